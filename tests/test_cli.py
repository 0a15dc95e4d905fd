from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from medtwin_ml import __version__
from medtwin_ml.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_every_command_has_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"twins", "schemas", "simulate"} <= set(commands)
    for name in commands:
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
        assert "Usage" in sub.output


def test_twins_json_lists_every_registered_twin():
    from medtwin_ml.registry import twin_names

    result = runner.invoke(app, ["twins", "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [t["name"] for t in listed] == twin_names()
    for t in listed:
        assert t["outputs"], t["name"]
        assert all(q["unit"] for q in t["outputs"])


def test_unknown_twin_is_a_clear_error(tmp_path):
    p = tmp_path / "p.json"
    p.write_text("{}")
    result = runner.invoke(
        app,
        [
            "simulate",
            "nosuch",
            "--params",
            str(p),
            "--scenario",
            str(p),
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "unknown twin 'nosuch'" in result.output
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("argv", [["twins"], ["schemas", "--check"]])
def test_commands_run(argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
