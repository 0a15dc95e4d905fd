from __future__ import annotations

import json

import pytest
from pydantic import Field

from medtwin_ml.config import BoundaryModel, load_config, validate_input
from medtwin_ml.errors import ConfigError


class _Inner(BoundaryModel):
    carbs_g: float = Field(ge=0)


class _Config(BoundaryModel):
    name: str
    duration_min: float = Field(gt=0)
    meals: list[_Inner] = Field(default_factory=list)


def test_yaml_and_json_load_the_same(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "name: x\nduration_min: 60\nmeals:\n- carbs_g: 5\n"
    )
    (tmp_path / "a.json").write_text(
        json.dumps({"name": "x", "duration_min": 60, "meals": [{"carbs_g": 5}]})
    )
    assert load_config(tmp_path / "a.yaml", _Config) == load_config(
        tmp_path / "a.json", _Config
    )


def test_bad_value_names_file_key_value_and_expectation(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nduration_min: 60\nmeals:\n- carbs_g: -4\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, _Config)
    message = str(info.value)
    assert str(path) in message
    assert "meals.0.carbs_g" in message
    assert "-4" in message
    assert "greater than or equal to 0" in message


def test_unknown_key_is_refused_by_name(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "x", "duration_min": 1, "durration": 2}))
    with pytest.raises(ConfigError, match=r"durration: got 2; expected no such key"):
        load_config(path, _Config)


@pytest.mark.parametrize("text", ['{"name": "x", "duration_min": NaN}', "{"])
def test_non_finite_and_broken_json_are_refused(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"c\.json"):
        load_config(path, _Config)


def test_non_finite_in_parsed_data_names_the_key():
    with pytest.raises(ConfigError, match=r"meals.0.carbs_g: got inf"):
        validate_input(
            {"name": "x", "duration_min": 1, "meals": [{"carbs_g": float("inf")}]},
            _Config,
            source="request body",
        )


def test_missing_file_and_wrong_top_level(tmp_path):
    with pytest.raises(ConfigError, match="an existing file"):
        load_config(tmp_path / "nope.yaml", _Config)
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a mapping of keys"):
        load_config(path, _Config)
