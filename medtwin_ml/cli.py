"""The ``medtwin`` command.

This is the one module that ties the core, ``training`` and ``serving`` together; it
imports them inside the commands that need them, so that ``medtwin --help`` stays
fast and a serving-only installation never needs torch.
"""

from __future__ import annotations

import json
import logging
import os
import time
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


def _load(module: str, extra: str) -> Any:
    """Import ``module`` for a command, or fail with the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _fail(
            ImportError(
                f"{exc}; install the {extra} extra: pip install 'medtwin-ml[{extra}]'"
            )
        ) from None


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


@app.command()
def generate(
    config: Annotated[
        Path, typer.Argument(help="Dataset config (configs/datasets/*.yaml).")
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (tcp://host:8786); default a local "
            "cluster of processes; 'sync' solves in this process."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes of the local cluster (default 2)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace a stored dataset made from another config."
        ),
    ] = False,
) -> None:
    """Draw cases from a twin's input domain, solve them and store the dataset.

    Re-running the same config resumes an interrupted generation.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from medtwin_ml.config import load_config
    from medtwin_ml.datasets import DatasetConfig, generate_dataset, open_dataset
    from medtwin_ml.workspace import Workspace

    if scheduler != "sync":
        # Dask logs every worker's start and stop; show those only with -v.
        _quiet_libraries(("distributed",))
    try:
        cfg = load_config(config, DatasetConfig)
        workspace = Workspace.from_env().ensure()
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{cfg.name} cases", total=cfg.n_cases)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            path = generate_dataset(
                cfg,
                workspace,
                scheduler=scheduler,
                n_workers=workers,
                progress=progress,
                overwrite=overwrite,
            )
        dataset = open_dataset(path)
    except (MedtwinError, ValueError) as exc:
        raise _fail(exc) from None
    console.print(f"dataset {path}", highlight=False)
    console.print(f"n_cases {dataset.n_cases}", highlight=False)
    console.print(f"dataset_sha256 {dataset.sha256}", highlight=False)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="Training config (configs/models/).")],
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Start over instead of resuming this config's run."
        ),
    ] = False,
) -> None:
    """Train a surrogate on a stored dataset, track it in MLflow, register its ONNX.

    Running the same config again after an interruption resumes from the last
    checkpoint, in the same MLflow run.
    """
    from medtwin_ml.config import load_config
    from medtwin_ml.workspace import Workspace

    train_config = _load("training.config", "train").TrainConfig
    run_training = _load("training.train", "train").train
    _quiet_libraries()
    try:
        cfg = load_config(config, train_config)
        workspace = Workspace.from_env().ensure()
        outcome = run_training(cfg, workspace, fresh=fresh)
    except MedtwinError as exc:
        raise _fail(exc) from None
    table = Table(
        title=f"{outcome.model_name} v{outcome.model_version} on held-out patients"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in {**outcome.metrics, **outcome.parity}.items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    console.print(
        f"run {outcome.run_id} ({'resumed' if outcome.resumed else 'new'}), "
        f"{outcome.elapsed_s:.0f} s; bundle at {outcome.bundle_artifact}; "
        f"registered as models:/{outcome.model_name}@{cfg.tracking.alias}",
        highlight=False,
    )


@app.command()
def export(
    uri: Annotated[
        str,
        typer.Argument(
            help="runs:/RUN_ID, models:/NAME@ALIAS or models:/NAME/VERSION."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder to write the bundle to.")],
) -> None:
    """Write the verified bundle (model.onnx, card.json, SHA256SUMS) of a run."""
    from medtwin_ml.workspace import Workspace

    export_bundle = _load("training.train", "train").export_bundle
    _quiet_libraries()
    try:
        path = export_bundle(uri, out, Workspace.from_env())
    except (MedtwinError, ValueError) as exc:
        raise _fail(exc) from None
    except Exception as exc:  # MLflow raises its own types for unknown runs and models
        if type(exc).__name__ != "MlflowException":
            raise
        raise _fail(exc) from None
    console.print(f"bundle written to {path}", highlight=False)


@app.command()
def serve(
    bundles: Annotated[
        Path | None,
        typer.Option(help="Folder of bundles; default the workspace's bundles/."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    api_keys: Annotated[
        Path | None,
        typer.Option(
            help="File of API keys, one a line; added to $MEDTWIN_API_KEYS "
            "(comma-separated)."
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1024, help="Larger request bodies get 413.")
    ] = 1_000_000,
    threads: Annotated[
        int, typer.Option(min=1, help="onnxruntime intra-op threads per model.")
    ] = 1,
    batch_rows: Annotated[
        int,
        typer.Option(
            min=1,
            help="Most cases that concurrent requests share in one onnxruntime call.",
        ),
    ] = 64,
    bulk_threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="Threads that share the chunks of a cohort or other batch of more "
            "than 128 cases, each chunk one onnxruntime call.",
        ),
    ] = 2,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes on the port, each with every model and its own "
            "listening socket (the kernel spreads connections over them); more "
            "than one lets requests' Python run on several cores.",
        ),
    ] = 1,
) -> None:
    """Serve the what-if API over every verified bundle in a folder."""
    from medtwin_ml.workspace import Workspace

    uvicorn = _load("uvicorn", "serve")
    srv = _load("serving", "serve")
    app_module = _load("serving.app", "serve")
    log_audit_to_stderr = _load("serving.middleware", "serve").log_audit_to_stderr
    try:
        settings = srv.ServingSettings(
            bundles=(bundles or Workspace.from_env().bundles).resolve(),
            api_keys=srv.ApiKeys.load(api_keys),
            max_body_bytes=max_body_bytes,
            threads=threads,
            batch_rows=batch_rows,
            api_keys_file=api_keys.resolve() if api_keys else None,
            bulk_threads=bulk_threads,
        )
        # Built here even with several workers: a bundle or key that would be
        # refused stops the command before any process starts.
        application = srv.create_app(settings)
    except MedtwinError as exc:
        raise _fail(exc) from None
    log_audit_to_stderr()
    common = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "server_header": False,
        "access_log": False,  # the audit line is the access log
    }
    if workers == 1:
        app_module.settle_heap(application)
        uvicorn.run(application, workers=1, **common)
        return
    application.state.store.close()
    workers_module = _load("serving.workers", "serve")
    try:
        socks = workers_module.listening_sockets(host, port, workers)
    except MedtwinError as exc:
        raise _fail(exc) from None
    os.environ[app_module.SETTINGS_ENV] = settings.to_env()
    del common["host"], common["port"]  # the workers get their sockets
    status = workers_module.run_workers(socks, workers, common)
    if status:
        raise typer.Exit(status)


@app.command()
def validate(
    bundle: Annotated[Path, typer.Argument(help="Bundle folder (card.json, model).")],
    out: Annotated[Path, typer.Option(help="Folder for report.html and report.json.")],
    cases: Annotated[
        int, typer.Option("--cases", min=1, help="Fresh in-domain study cases.")
    ] = 100,
    context: Annotated[
        Path | None,
        typer.Option(help="Context of use (YAML); default the twin's own."),
    ] = None,
    corners: Annotated[
        int, typer.Option(min=0, help="Cases at corners of the design domain.")
    ] = 16,
    calibration: Annotated[
        int,
        typer.Option(
            min=10, help="Calibration cases, when the card lacks detector or intervals."
        ),
    ] = 200,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the study cases (not a training seed).")
    ] = None,
    verification: Annotated[
        bool,
        typer.Option(
            "--verification/--no-verification", help="Run the solver's checks."
        ),
    ] = True,
    update_card: Annotated[
        bool,
        typer.Option(
            "--update-card/--no-update-card", help="Write metrics to the card."
        ),
    ] = True,
) -> None:
    """Compare a bundle with its twin's full solver; write the credibility report.

    Exits 0 when every acceptance criterion of the context of use passes, 1 when
    some fail, 2 on invalid input.
    """
    from medtwin_ml.validation.validate import DEFAULT_SEED, validate_bundle
    from medtwin_ml.workspace import Workspace

    try:
        outcome = validate_bundle(
            bundle,
            out,
            n_cases=cases,
            n_corners=corners,
            n_calibration=calibration,
            context=context,
            seed=DEFAULT_SEED if seed is None else seed,
            run_verification=verification,
            update_card=update_card,
            workspace=Workspace.from_env(),
        )
    except (MedtwinError, ValueError) as exc:
        raise _fail(exc) from None
    table = Table(title="Acceptance criteria")
    for column in ("criterion", "measured", "required", "verdict"):
        table.add_column(column)
    for c in outcome.criteria:
        verdict = "[green]PASS[/]" if c["passed"] else "[red]FAIL[/]"
        table.add_row(c["name"], f"{c['value']:.4g}", c["bound"], verdict)
    console.print(table)
    console.print(f"report {outcome.html}", highlight=False)
    console.print(f"report_json {outcome.json}", highlight=False)
    if outcome.mlflow_logged:
        console.print("logged to the bundle's MLflow run", highlight=False)
    if not outcome.passed:
        raise typer.Exit(code=1)


@app.command()
def demo(
    twin: Annotated[
        str, typer.Option(help="Twin to demonstrate; the diabetes twin has the path.")
    ] = "diabetes",
    size: Annotated[
        str, typer.Option(help="'default' (minutes) or 'tiny' (about a minute).")
    ] = "default",
) -> None:
    """Run the whole platform once: generate, train, export, serve, ask, validate."""
    from medtwin_ml.workspace import Workspace

    if twin != "diabetes":
        raise _fail(
            ConfigError(
                "--twin",
                [
                    (
                        "twin",
                        twin,
                        "diabetes: the only twin with a surrogate path so far",
                    )
                ],
            )
        )
    if size not in ("default", "tiny"):
        raise _fail(ConfigError("--size", [("size", size, "'default' or 'tiny'")]))
    run_demo = _load("training.demo", "all").run_demo
    _quiet_libraries()
    workspace = Workspace.from_env()
    started = time.perf_counter()
    try:
        with console.status("working...") as status:

            def report(line: str) -> None:
                console.print(f"[bold cyan]>[/] {line}", highlight=False)
                status.update(line)

            result = run_demo(workspace, size=size, report=report)  # type: ignore[arg-type]
    except MedtwinError as exc:
        raise _fail(exc) from None
    _print_demo_summary(result, workspace, time.perf_counter() - started)


def _quiet_libraries(
    modules: tuple[str, ...] = ("lightning", "mlflow", "distributed"),
) -> None:
    """Keep third-party INFO chatter out of the output unless -v is given.

    Lightning, MLflow and Dask set up their own loggers when imported, so
    ``modules`` are imported first and quietened after.
    """
    if logging.getLogger().level < logging.WARNING:
        return
    import importlib
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
    for name in ("lightning", "lightning.pytorch", "lightning.fabric",
                 "onnxscript", "onnx_ir", "mlflow", "distributed", "torch",
                 "torch.onnx"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.ERROR)


def _print_demo_summary(result, workspace, elapsed_s: float) -> None:
    m = result.test_metrics
    g = "plasma_glucose_mg_dl"
    w = result.what_if
    table = Table(title="medtwin demo: what was measured in this run")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row(
        "surrogate vs full solver, held-out patients, 24 h",
        f"glucose MARD {m[g + '.mard_pct']:.2f} %, RMSE {m[g + '.rmse']:.2f} mg/dL",
    )
    if f"{g}.coverage_90_pct" in m:
        table.add_row(
            "nominal 90 % intervals cover", f"{m[g + '.coverage_90_pct']:.1f} %"
        )
    for label, title in (("prescribed", "basal as prescribed"),
                         ("basal_plus_20pct", "basal +20 %")):  # fmt: skip
        o = w["answers"][label]["outcomes"]
        table.add_row(
            f"{w['n']} Korean adults, {title}",
            f"time in range median {o['time_in_range_pct']['p50']:.1f} %, "
            f"below 70 p95 {o['time_below_70_pct']['p95']:.1f} %",
        )
    table.add_row(
        f"cohort of {w['n']} over HTTP vs batched full solver",
        f"{1000 * w['latency_s']:.0f} ms vs {w['full_solver_s']:.2f} s "
        f"(x{w['speedup']:.0f})",
    )
    table.add_row(
        "the same vs the reference solver (adaptive; 3 patients timed, scaled)",
        f"{w['reference_solver_s']:.0f} s (x{w['reference_speedup']:.0f})",
    )
    table.add_row(
        "validation against the full solver",
        "all criteria pass" if result.validation_passed else "some criteria fail",
    )
    table.add_row("total time", f"{elapsed_s / 60:.1f} min")
    console.print(table)
    console.print(
        f"report      {result.report}\n"
        f"bundle      {result.bundle}\n"
        f"model       {result.model_uri} (run {result.run_id})\n"
        f"MLflow UI   mlflow ui --backend-store-uri {workspace.tracking_uri}\n"
        f"API docs    MEDTWIN_API_KEYS=... medtwin serve --bundles "
        f"{result.bundle.parent}, then http://127.0.0.1:8000/docs",
        highlight=False,
    )


if __name__ == "__main__":  # pragma: no cover
    app()
