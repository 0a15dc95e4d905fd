"""The ``medtwin`` command.

This is the one module that ties the core, ``training`` and ``serving`` together; it
imports them inside the commands that need them, so that ``medtwin --help`` stays
fast and a serving-only installation never needs torch.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from medtwin_ml._version import __version__
from medtwin_ml.errors import ConfigError, MedtwinError

app = typer.Typer(
    name="medtwin",
    help="Digital twins of patients and devices, and fast surrogates of them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

DATA_SCHEMAS = Path(__file__).resolve().parent.parent / "data_schemas"


def _version(value: bool) -> None:
    if value:
        console.print(f"medtwin-ml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output.")
    ] = 0,
) -> None:
    """medtwin-ml: generate, train, export, serve and validate twin surrogates."""
    level = logging.WARNING - 10 * min(verbose, 2)
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(code=2)


def all_boundary_models() -> dict[str, Any]:
    """Boundary models of the core and, when installed, of the serving layer."""
    from medtwin_ml.schemas import core_models

    models = core_models()
    try:
        from serving.schemas import boundary_models as serving_models
    except ImportError:  # the serving extra is not installed
        return models
    models.update(serving_models())
    return models


@app.command()
def twins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered twins with their models, outputs and input domain."""
    from medtwin_ml.registry import twins as all_twins

    specs = all_twins()
    if as_json:
        console.print_json(json.dumps([s.describe() for s in specs]))
        return
    table = Table(title="Registered twins")
    for column in ("twin", "parameters", "device", "scenario", "outputs", "domain"):
        table.add_column(column, overflow="fold")
    for s in specs:
        outputs = ", ".join(f"{q.name} [{q.unit}]" for q in s.outputs)
        domain = ", ".join(
            f"{v.name} [{v.low:g}, {v.high:g}] {v.unit}"
            for v in s.input_domain.variables
        )
        table.add_row(
            f"[bold]{s.name}[/]\n{s.title}",
            s.parameters.__name__,
            s.device.__name__,
            s.scenario.__name__,
            outputs,
            domain,
        )
    console.print(table)


@app.command()
def schemas(
    out: Annotated[
        Path, typer.Option(help="Folder of the schema files.")
    ] = DATA_SCHEMAS,
    check: Annotated[
        bool, typer.Option("--check", help="Only report drift; write nothing.")
    ] = False,
) -> None:
    """Write the JSON Schema of every boundary model to data_schemas/."""
    from medtwin_ml.schemas import check_schemas, write_schemas

    models = all_boundary_models()
    if check:
        problems = check_schemas(models, out)
        for line in problems:
            err_console.print(line, highlight=False)
        if problems:
            raise typer.Exit(code=1)
        console.print(f"{len(models)} schemas in sync with {out}")
        return
    written = write_schemas(models, out)
    console.print(f"wrote {len(written)} schemas to {out}")


@app.command()
def simulate(
    twin: Annotated[str, typer.Argument(help="Registered twin, e.g. diabetes.")],
    params: Annotated[Path, typer.Option(help="Parameters (JSON or YAML).")],
    scenario: Annotated[Path, typer.Option(help="Scenario (JSON or YAML).")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .npz).")],
    device: Annotated[
        Path | None, typer.Option(help="Device settings (JSON or YAML).")
    ] = None,
    controller: Annotated[
        str | None, typer.Option(help="Close the loop with this controller.")
    ] = None,
    cgm: Annotated[
        bool, typer.Option("--cgm", help="Add a CGM reading column.")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the device's noise.")
    ] = None,
) -> None:
    """Run one case on a twin's full solver and write its output."""
    from medtwin_ml.config import load_config, read_mapping, validate_input
    from medtwin_ml.registry import get_twin
    from medtwin_ml.twin import Case

    try:
        spec = get_twin(twin)
        if out.suffix.lower() != spec.suffix:
            raise ConfigError(
                "--out", [("out", str(out), f"a {spec.suffix} file for twin {twin}")]
            )
        p = load_config(params, spec.parameters)
        s = load_config(scenario, spec.scenario)
        device_data = read_mapping(device) if device else {}
        overrides = {
            "controller": controller,
            "cgm": True if cgm else None,
            "seed": seed,
        }
        device_data.update({k: v for k, v in overrides.items() if v is not None})
        source = str(device) if device else "device options"
        d = validate_input(device_data, spec.device, source=source)
        result = spec.simulate(Case(params=p, device=d, scenario=s))
    except MedtwinError as exc:
        raise _fail(exc) from None
    result.save(out)
    console.print(f"wrote {out}")
    if result.summary:
        table = Table(title=f"{twin} outcomes")
        table.add_column("outcome")
        table.add_column("value", justify="right")
        for key, value in result.summary.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            table.add_row(key, shown)
        console.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
