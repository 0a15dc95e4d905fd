from __future__ import annotations

import json

import pytest

from medtwin_ml.export.bundle import (
    BundleCard,
    BundleError,
    Integration,
    Signal,
    load_bundle,
    update_card,
    write_bundle,
)


def _card(**kw):
    return BundleCard(
        name="m",
        version="1",
        twin="diabetes",
        parameters=[Signal(name="BW", unit="kg")],
        controls=[Signal(name="carbs_eaten_g", unit="g per 1 min")],
        outputs=[Signal(name="plasma_glucose_mg_dl", unit="mg/dL")],
        integration=Integration(
            step=10, data_step=1, time_name="time_min", time_unit="min"
        ),
        input_domain={"parameters": {"BW": [50, 90]}},
        **kw,
    )


@pytest.fixture()
def bundle(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really onnx, but bytes with a checksum")
    return write_bundle(tmp_path / "bundle", model, _card())


def test_round_trip_records_the_model_checksum(bundle):
    card, model = load_bundle(bundle)
    assert model.startswith(b"not really onnx")
    assert len(card.model_sha256) == 64


@pytest.mark.parametrize("victim", ["model.onnx", "card.json"])
def test_a_changed_file_is_refused(bundle, victim):
    path = bundle / victim
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(BundleError, match=rf"{victim} has sha256"):
        load_bundle(bundle)


def test_a_card_naming_another_model_is_refused(bundle, tmp_path):
    card = json.loads((bundle / "card.json").read_text())
    card["model_sha256"] = "0" * 64
    # Rewrite the card and its recorded checksum consistently: still refused.
    import hashlib

    text = json.dumps(card)
    (bundle / "card.json").write_text(text)
    sums = (bundle / "SHA256SUMS").read_text().splitlines()
    sums[1] = f"{hashlib.sha256(text.encode()).hexdigest()}  card.json"
    (bundle / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(BundleError, match=r"card\.json names model sha256"):
        load_bundle(bundle)


def test_missing_file_is_refused(bundle):
    (bundle / "SHA256SUMS").unlink()
    with pytest.raises(BundleError, match="missing SHA256SUMS"):
        load_bundle(bundle)


def test_update_card_keeps_the_bundle_verifiable(bundle):
    update_card(bundle, validation={"rmse": 1.5})
    card, _ = load_bundle(bundle)
    assert card.validation == {"rmse": 1.5}
