"""Surrogate bundles: what serving loads.

A bundle is a folder::

    model.onnx     the surrogate, a whole rollout in one ONNX graph
    card.json      what the model is: twin, inputs and outputs with units and order,
                   integration scheme and step, input domain, validity detector,
                   validation metrics, training run, dataset and model checksums
    SHA256SUMS     sha256 of model.onnx and card.json

This module needs numpy and pydantic only: serving imports it. A bundle whose files do
not match their checksums is refused, and nothing in a bundle is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from medtwin_ml._io import sha256_file
from medtwin_ml.errors import MedtwinError

__all__ = [
    "BundleCard",
    "BundleError",
    "Signal",
    "load_bundle",
    "write_bundle",
]

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
SUMS_FILE = "SHA256SUMS"


class BundleError(MedtwinError):
    """A bundle is missing a file, or a file does not match its checksum."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Signal(_Model):
    """One named input or output column of the model, with its unit."""

    name: str
    unit: str
    description: str = ""


class Integration(_Model):
    """How the exported graph integrates the learned dynamics."""

    scheme: Literal["rk4_3_8"] = "rk4_3_8"
    exported: Literal["rollout_loop"] = Field(
        default="rollout_loop",
        description="One RK step exported and looped by an ONNX Loop over the steps.",
    )
    step: float = Field(gt=0, description="Integration and output step.")
    data_step: float = Field(
        gt=0,
        description="Grid of the twin's exogenous signals; each control is the mean "
        "of step / data_step consecutive values.",
    )
    time_name: str = Field(description="Name of the time coordinate, e.g. time_min.")
    time_unit: str


class OnnxIO(_Model):
    """Names and layouts of the ONNX graph's inputs and outputs."""

    parameters: str = "p"
    controls: str = "u"
    outputs: str = "y"
    layout: str = (
        "p (batch, n_params); u (batch, n_steps, n_controls); "
        "y (batch, n_steps + 1, n_outputs)"
    )


class BundleCard(_Model):
    """The card of a bundle (``card.json``)."""

    format_version: Literal[1] = 1
    name: str
    version: str
    twin: str
    kind: Literal["controlled_neural_ode"] = "controlled_neural_ode"
    parameters: list[Signal] = Field(description="Columns of p, in order.")
    controls: list[Signal] = Field(
        description="Columns of u, in order; each the mean over one step."
    )
    outputs: list[Signal] = Field(description="Columns of y, in order.")
    integration: Integration
    onnx: OnnxIO = Field(default_factory=OnnxIO)
    input_domain: dict[str, Any] = Field(
        description="Bounds of the inputs the training data covered."
    )
    validity: dict[str, Any] = Field(
        default_factory=dict,
        description="Detector of inputs far from the training data.",
    )
    uncertainty: dict[str, Any] = Field(
        default_factory=dict,
        description="Calibrated interval half-widths per output, when known.",
    )
    validation: dict[str, Any] = Field(
        default_factory=dict, description="Metrics against the full solver."
    )
    parity: dict[str, float] = Field(
        default_factory=dict, description="onnxruntime against PyTorch."
    )
    training: dict[str, Any] = Field(
        default_factory=dict,
        description="Training run, tracking URI, dataset name and checksum.",
    )
    model_sha256: str = ""


def write_bundle(
    out: str | os.PathLike[str], model_path: Path, card: BundleCard
) -> Path:
    """Write a bundle folder at ``out`` atomically; the card gets the model's checksum.

    An existing bundle at ``out`` is replaced only once the new one is complete.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copyfile(model_path, staging / MODEL_FILE)
        card = card.model_copy(
            update={"model_sha256": sha256_file(staging / MODEL_FILE)}
        )
        (staging / CARD_FILE).write_text(
            json.dumps(card.model_dump(mode="json"), indent=2, allow_nan=False) + "\n"
        )
        sums = "".join(
            f"{sha256_file(staging / name)}  {name}\n"
            for name in (MODEL_FILE, CARD_FILE)
        )
        (staging / SUMS_FILE).write_text(sums)
        if out.exists():
            backup = out.with_name(f".{out.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            out.rename(backup)
            staging.rename(out)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def load_bundle(path: str | os.PathLike[str]) -> tuple[BundleCard, bytes]:
    """Read and verify a bundle: the card and the ONNX model's bytes.

    Raises:
        BundleError: a file is missing, a checksum does not match, or the card is
            not a valid card.
    """
    path = Path(path)
    for name in (MODEL_FILE, CARD_FILE, SUMS_FILE):
        if not (path / name).is_file():
            raise BundleError(f"bundle {path}: missing {name}")
    recorded = {}
    for line in (path / SUMS_FILE).read_text().splitlines():
        digest, _, name = line.partition("  ")
        recorded[name.strip()] = digest.strip()
    for name in (MODEL_FILE, CARD_FILE):
        actual = sha256_file(path / name)
        if recorded.get(name) != actual:
            raise BundleError(
                f"bundle {path}: {name} has sha256 {actual}, but {SUMS_FILE} records "
                f"{recorded.get(name)}; refusing a bundle that changed after export"
            )
    try:
        card = BundleCard.model_validate_json((path / CARD_FILE).read_text())
    except ValueError as exc:
        raise BundleError(
            f"bundle {path}: card.json is not a valid card: {exc}"
        ) from None
    model_bytes = (path / MODEL_FILE).read_bytes()
    if card.model_sha256 != recorded[MODEL_FILE]:
        raise BundleError(
            f"bundle {path}: card.json names model sha256 {card.model_sha256}, "
            f"but model.onnx has {recorded[MODEL_FILE]}"
        )
    return card, model_bytes


def update_card(path: str | os.PathLike[str], **fields: Any) -> BundleCard:
    """Rewrite a verified bundle's card with some fields replaced; checksums follow."""
    path = Path(path)
    card, _ = load_bundle(path)
    card = card.model_copy(update=fields)
    BundleCard.model_validate(card.model_dump())
    write_bundle(path, path / MODEL_FILE, card)
    return card
