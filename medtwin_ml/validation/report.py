"""The credibility report: one self-contained HTML page and ``report.json``.

The page carries its figures inline (PNG from matplotlib's Agg backend, base64), so
it opens anywhere, offline, and can be attached to a submission as one file. Each
figure is an ``<img data-figure="...">``; a short script marks the page with
``<body data-figures-ok="N">`` or ``data-figures-broken="names"`` once the images
have decoded, so a headless browser can tell a broken figure from a good one
(``bench/render_report.py``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medtwin_ml._io import atomic_path
from medtwin_ml.validation.context import ContextOfUse
from medtwin_ml.validation.metrics import clarke_zones
from medtwin_ml.validation.study import CORNER, STUDY, StudyResult

__all__ = ["figures", "render_html", "report_data", "write_report"]

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"

_SOLVER = "black"
_SURROGATE = "tab:red"
_ZONE_COLOURS = {"A": "#2b8a3e", "B": "#74b816", "C": "#f59f00", "D": "#e8590c"}
_ZONE_COLOURS["E"] = "#c92a2a"


# Figures -----------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fig_error_distributions(study: StudyResult) -> str:
    plt = _pyplot()
    n_out = len(study.names)
    fig, axes = plt.subplots(1, n_out, figsize=(4.2 * n_out, 3.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        values = study.case_rmse[:, k]
        bins = np.histogram_bin_edges(values[np.isfinite(values)], bins=20)
        for group, colour, label in (
            (STUDY, "tab:blue", "in-domain study"),
            (CORNER, "tab:orange", "domain corners"),
        ):
            sel = study.kind == group
            if sel.any():
                ax.hist(values[sel], bins=bins, alpha=0.6, color=colour, label=label)
        ax.set_xlabel(f"case RMSE of {study.names[k]} [{study.units[k]}]", fontsize=8)
        ax.set_ylabel("cases", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Error distributions: one RMSE per case", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _fig_outcome_errors(study: StudyResult, qoi: str, unit: str) -> str:
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    p, r = study.outcomes_pred[qoi], study.outcomes_ref[qoi]
    for group, colour, label in (
        (STUDY, "tab:blue", "in-domain study"),
        (CORNER, "tab:orange", "domain corners"),
    ):
        sel = study.kind == group
        if sel.any():
            ax1.scatter(r[sel], p[sel], s=12, color=colour, label=label, alpha=0.8)
            ax2.hist(p[sel] - r[sel], bins=20, color=colour, alpha=0.6, label=label)
    lo, hi = float(min(p.min(), r.min())), float(max(p.max(), r.max()))
    ax1.plot([lo, hi], [lo, hi], color="grey", lw=1)
    ax1.set_xlabel(f"solver {qoi} [{unit}]", fontsize=8)
    ax1.set_ylabel(f"surrogate {qoi} [{unit}]", fontsize=8)
    ax1.legend(fontsize=7)
    ax2.set_xlabel(f"surrogate - solver, {qoi} [{unit}]", fontsize=8)
    ax2.set_ylabel("cases", fontsize=8)
    for ax in (ax1, ax2):
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Quantity of interest: {qoi}", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def time_label(study: StudyResult) -> str:
    """The label of a time axis, with its unit when the study knows it."""
    return f"time [{study.time_unit}]" if study.time_unit else "time"


def _fig_worst_cases(study: StudyResult, n: int = 4) -> str:
    plt = _pyplot()
    order = np.argsort(-study.case_rmse[:, 0])[:n]
    fig, axes = plt.subplots(
        len(order), 1, figsize=(8.5, 2.1 * len(order)), sharex=True, squeeze=False
    )
    t = study.times
    for ax, i in zip(axes[:, 0], order, strict=True):
        if study.lower is not None and study.upper is not None:
            ax.fill_between(
                t,
                study.lower[i, :, 0],
                study.upper[i, :, 0],
                color=_SURROGATE,
                alpha=0.15,
                label="calibrated interval",
            )
        ax.plot(t, study.ref[i, :, 0], color=_SOLVER, lw=1.4, label="full solver")
        ax.plot(t, study.pred[i, :, 0], color=_SURROGATE, lw=1.2, ls="--")
        ax.set_ylabel(f"{study.names[0]}\n[{study.units[0]}]", fontsize=7)
        flag = "in domain" if study.in_domain[i] else "OUT of domain"
        ax.set_title(
            f"case {i} ({study.kind[i]}, {flag}): RMSE "
            f"{study.case_rmse[i, 0]:.3g} {study.units[0]}",
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    axes[0, 0].plot([], [], color=_SURROGATE, ls="--", label="surrogate")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel(time_label(study), fontsize=8)
    fig.suptitle("Worst cases, surrogate over solver", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _fig_domain(study: StudyResult, threshold: float | None) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    d, e = study.distance, study.case_rmse[:, 0]
    for group, marker, label in ((STUDY, "o", "study"), (CORNER, "s", "corner")):
        for ok, colour, tag in (
            (True, "tab:blue", "in domain"),
            (False, "tab:red", "out of domain"),
        ):
            sel = (study.kind == group) & (study.in_domain == ok)
            if sel.any():
                ax.scatter(
                    d[sel],
                    e[sel],
                    s=16,
                    marker=marker,
                    color=colour,
                    label=f"{label}, {tag}",
                    alpha=0.8,
                )
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="grey", ls=":", label="detector threshold")
    ax.set_xlabel("distance from the training data (Mahalanobis)", fontsize=8)
    ax.set_ylabel(f"case RMSE of {study.names[0]} [{study.units[0]}]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("Error across the domain", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _fig_calibration(
    study: StudyResult, level: float, reliability: Sequence[tuple[float, float]]
) -> str:
    plt = _pyplot()
    panels = 2 if reliability else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.4), squeeze=False)
    ax = axes[0, 0]
    sel = study.kind == STUDY
    if study.lower is None or study.upper is None:
        raise ValueError("the calibration figure needs the study's intervals")
    for k, name in enumerate(study.names):
        r = study.ref[sel, :, k]
        inside = (r >= study.lower[sel, :, k]) & (r <= study.upper[sel, :, k])
        ax.plot(study.times, 100 * inside.mean(axis=0), lw=1, label=name)
    ax.axhline(100 * level, color="grey", ls="--", lw=1, label="nominal")
    ax.set_ylim(0, 102)
    ax.set_xlabel(time_label(study), fontsize=8)
    ax.set_ylabel("coverage of held-out solver values [%]", fontsize=8)
    ax.legend(fontsize=6)
    ax.tick_params(labelsize=7)
    if reliability:
        ax = axes[0, 1]
        nominal, observed = zip(*reliability, strict=True)
        ax.plot([0, 100], [0, 100], color="grey", lw=1)
        ax.plot(
            100 * np.array(nominal), 100 * np.array(observed), "o-", color="tab:blue"
        )
        ax.set_xlabel("nominal level [%]", fontsize=8)
        ax.set_ylabel("observed coverage [%]", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("Calibration of the conformal intervals", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _fig_clarke(study: StudyResult, name: str, max_points: int = 4000) -> str:
    plt = _pyplot()
    k = study.names.index(name)
    sel = study.kind == STUDY
    x = study.ref[sel, :, k].ravel()
    y = study.pred[sel, :, k].ravel()
    if len(x) > max_points:
        pick = np.random.default_rng(0).choice(len(x), max_points, replace=False)
        x, y = x[pick], y[pick]
    zones = clarke_zones(y, x)
    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    for zone, colour in _ZONE_COLOURS.items():
        s = zones == zone
        if s.any():
            ax.scatter(x[s], y[s], s=4, color=colour, label=f"zone {zone}")
    line = dict(color="black", lw=0.8)
    ax.plot([0, 400], [0, 400], ls=":", **line)
    ax.plot([0, 175 / 3], [70, 70], **line)
    ax.plot([175 / 3, 400 / 1.2], [70, 400], **line)
    ax.plot([70, 70], [84, 400], **line)
    ax.plot([0, 70], [180, 180], **line)
    ax.plot([70, 290], [180, 400], **line)
    ax.plot([70, 70], [0, 56], **line)
    ax.plot([70, 400], [56, 320], **line)
    ax.plot([180, 180], [0, 70], **line)
    ax.plot([180, 400], [70, 70], **line)
    ax.plot([240, 240], [70, 180], **line)
    ax.plot([240, 400], [180, 180], **line)
    ax.plot([130, 180], [0, 70], **line)
    ax.set_xlim(0, 400)
    ax.set_ylim(0, 400)
    ax.set_xlabel(f"solver {name} [mg/dL]", fontsize=8)
    ax.set_ylabel(f"surrogate {name} [mg/dL]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper left", markerscale=3)
    ax.set_title("Clarke error grid (surrogate vs solver)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def figures(
    study: StudyResult,
    context: ContextOfUse,
    *,
    threshold: float | None = None,
    level: float | None = None,
    reliability: Sequence[tuple[float, float]] = (),
) -> dict[str, tuple[str, str]]:
    """The report's figures: ``{key: (caption, base64 PNG)}``."""
    qoi = context.quantity_of_interest
    out: dict[str, tuple[str, str]] = {
        "error_distributions": (
            "Distribution of the per-case RMSE of each output, in-domain study cases "
            "and cases at the corners of the design domain.",
            _fig_error_distributions(study),
        ),
    }
    if qoi.name in study.outcomes_ref:
        out["quantity_of_interest"] = (
            f"Surrogate against solver for the quantity of interest {qoi.name}.",
            _fig_outcome_errors(study, qoi.name, qoi.unit),
        )
    out["worst_cases"] = (
        f"The four cases with the largest RMSE of {study.names[0]}: solver (solid), "
        "surrogate (dashed) and its calibrated interval.",
        _fig_worst_cases(study),
    )
    if np.any(np.isfinite(study.distance)):
        out["error_across_domain"] = (
            "Case RMSE against the distance of the case from the training data; "
            "red marks cases the validity detector flags.",
            _fig_domain(study, threshold),
        )
    if study.lower is not None and level is not None:
        out["calibration"] = (
            "Coverage of held-out solver values by the nominal "
            f"{100 * level:g} % intervals over time"
            + (", and observed against nominal coverage" if reliability else "")
            + ".",
            _fig_calibration(study, level, reliability),
        )
    for name in context.error_grid:
        out[f"clarke_{name}"] = (
            f"Clarke error grid of {name}: surrogate as the estimate, full solver as "
            "the reference, in-domain study cases.",
            _fig_clarke(study, name),
        )
    return out


# JSON ---------------------------------------------------------------------------------


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def report_data(
    study: StudyResult,
    context: ContextOfUse,
    *,
    bundle: Mapping[str, Any],
    solver_checks: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    domain: Mapping[str, Any],
    uncertainty: Mapping[str, Any],
) -> dict[str, Any]:
    """The content of ``report.json`` (non-finite numbers written as ``null``)."""
    worst = np.argsort(-study.case_rmse[:, 0])[:10]
    data = {
        "format_version": 1,
        "passed": study.passed,
        "context_of_use": {
            **context.model_dump(mode="json"),
            "model_risk_level": context.model_risk.level,
        },
        "bundle": dict(bundle),
        "criteria": study.criteria,
        "metrics": study.metrics,
        "cases": {
            "study": int(np.sum(study.kind == STUDY)),
            "corners": int(np.sum(study.kind == CORNER)),
            "out_of_domain": int(np.sum(~study.in_domain)),
            "worst": [
                {
                    "case": int(i),
                    "kind": str(study.kind[i]),
                    "rmse": float(study.case_rmse[i, 0]),
                    "output": study.names[0],
                    "distance": float(study.distance[i]),
                    "in_domain": bool(study.in_domain[i]),
                    "reasons": study.reasons[i],
                }
                for i in worst
            ],
        },
        "validity_domain": dict(domain),
        "uncertainty": dict(uncertainty),
        "solver_checks": list(solver_checks),
        "provenance": dict(provenance),
    }
    return _finite(json.loads(json.dumps(data, default=_default)))


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


# HTML ---------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.pass { background: #d3f9d8; } .fail { background: #ffe3e3; }
.verdict { display: inline-block; padding: 0.3em 0.8em; font-weight: bold;
           border-radius: 4px; font-size: 1.2em; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
.muted { color: #666; font-size: 0.85em; }
"""

# Marks <body> once every figure has decoded, so a headless browser can check them.
_SCRIPT = """
function markFigures() {
  var imgs = document.querySelectorAll('img[data-figure]');
  var broken = [];
  imgs.forEach(function (img) {
    if (!img.complete || img.naturalWidth === 0) broken.push(img.dataset.figure);
  });
  if (broken.length) document.body.dataset.figuresBroken = broken.join(',');
  else document.body.dataset.figuresOk = String(imgs.length);
}
window.addEventListener('load', markFigures);
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return _e(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes=None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(data: Mapping[str, Any], figs: Mapping[str, tuple[str, str]]) -> str:
    """The report page from ``report.json``'s content and the figures."""
    ctx = data["context_of_use"]
    bundle = data["bundle"]
    passed = data["passed"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Credibility report: {_e(bundle.get('name'))}</title>",
        f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>",
        f"<h1>Credibility report: {_e(bundle.get('name'))} "
        f"v{_e(bundle.get('version'))}</h1>",
        f"<p class='muted'>twin {_e(bundle.get('twin'))}; model sha256 "
        f"{_e(bundle.get('model_sha256', '')[:16])}...; generated "
        f"{_e(data['provenance'].get('created_utc'))}</p>",
        f"<p><span class='verdict {'pass' if passed else 'fail'}'>"
        f"{'PASS' if passed else 'FAIL'}</span> "
        f"{sum(c['passed'] for c in data['criteria'])} of {len(data['criteria'])} "
        "acceptance criteria met.</p>",
    ]

    # Context of use.
    risk = ctx["model_risk"]
    parts.append("<h2>Context of use</h2>")
    parts.append(
        _table(
            ["item", "value"],
            [
                ["question", _e(ctx["question"])],
                [
                    "quantity of interest",
                    f"{_e(ctx['quantity_of_interest']['name'])} "
                    f"[{_e(ctx['quantity_of_interest']['unit'])}]: "
                    f"{_e(ctx['quantity_of_interest']['description'])}",
                ],
                [
                    "decision threshold",
                    f"{_num(ctx['decision_threshold']['value'])} "
                    f"{_e(ctx['decision_threshold']['unit'])}: "
                    f"{_e(ctx['decision_threshold']['description'])}",
                ],
                [
                    "model risk",
                    f"influence {_e(risk['influence'])}, consequence "
                    f"{_e(risk['consequence'])}: level {ctx['model_risk_level']} "
                    f"of 5. {_e(risk.get('rationale', ''))}",
                ],
            ],
        )
    )

    # Criteria.
    parts.append("<h2>Acceptance criteria</h2>")
    rows, classes = [], []
    for c in data["criteria"]:
        rows.append(
            [
                _e(c["name"]),
                f"<code>{_e(c['metric'])}</code>",
                _num(c["value"]),
                _e(c["bound"]),
                "PASS" if c["passed"] else "FAIL",
                _e(c["rationale"] or c["note"]),
            ]
        )
        classes.append("pass" if c["passed"] else "fail")
    parts.append(
        _table(
            ["criterion", "metric", "measured", "required", "verdict", "why"],
            rows,
            classes,
        )
    )

    # Figures.
    cases = data["cases"]
    parts.append("<h2>Surrogate against the full solver</h2>")
    parts.append(
        f"<p>{cases['study']} fresh in-domain cases (seed "
        f"{_e(data['provenance'].get('seed'))}, never used in training) and "
        f"{cases['corners']} cases at corners of the design domain; "
        f"{cases['out_of_domain']} flagged out of domain by the detector.</p>"
    )
    for key, (caption, b64) in figs.items():
        parts.append(
            f"<figure><img data-figure='{_e(key)}' alt='{_e(key)}' "
            f"src='data:image/png;base64,{b64}'><figcaption>{_e(caption)}"
            "</figcaption></figure>"
        )

    # Metrics, study and corners side by side.
    parts.append("<h2>Metrics</h2>")
    metrics = data["metrics"]
    prefix = "corners."
    keys = sorted(k for k in metrics if not k.startswith(prefix))
    keys += sorted(
        k[len(prefix) :]
        for k in metrics
        if k.startswith(prefix) and k[len(prefix) :] not in metrics
    )
    metric_rows = [
        [f"<code>{_e(k)}</code>", _num(metrics.get(k)), _num(metrics.get(prefix + k))]
        for k in keys
    ]
    parts.append(_table(["metric", "study cases", "corner cases"], metric_rows))

    # Worst cases.
    parts.append("<h2>Worst cases</h2>")
    parts.append(
        _table(
            ["case", "kind", "RMSE", "distance", "in domain", "reasons"],
            [
                [
                    w["case"],
                    _e(w["kind"]),
                    f"{_num(w['rmse'])} ({_e(w['output'])})",
                    _num(w["distance"]),
                    "yes" if w["in_domain"] else "no",
                    _e("; ".join(w["reasons"])),
                ]
                for w in cases["worst"]
            ],
        )
    )

    # Validity domain and uncertainty.
    dom = data["validity_domain"]
    unc = data["uncertainty"]
    parts.append("<h2>Validity domain and uncertainty</h2>")
    parts.append(
        f"<p>Detector: {_e(dom.get('method'))} over {_e(dom.get('n_features'))} "
        f"features, threshold {_num(dom.get('threshold'))} at the "
        f"{_num(100 * float(dom.get('quantile', float('nan'))))} % quantile of "
        f"{_e(dom.get('n_train'))} reference cases ({_e(dom.get('source'))}).</p>"
    )
    parts.append(
        f"<p>Uncertainty: {_e(unc.get('method'))} at nominal level "
        f"{_num(unc.get('level'))} from {_e(unc.get('n_calibration'))} calibration "
        f"cases ({_e(unc.get('source'))}).</p>"
    )

    # Solver evidence.
    parts.append("<h2>Solver verification</h2>")
    checks = data["solver_checks"]
    if checks:
        parts.append(
            _table(
                ["check", "measured", "tolerance", "verdict", "detail"],
                [
                    [
                        _e(c["name"]),
                        _num(c["measured"]),
                        _num(c["tolerance"]),
                        "PASS" if c["passed"] else "FAIL",
                        _e(c["detail"]),
                    ]
                    for c in checks
                ],
                ["pass" if c["passed"] else "fail" for c in checks],
            )
        )
    else:
        parts.append("<p>The twin declares no verification checks.</p>")

    # Provenance.
    parts.append("<h2>Provenance</h2>")
    parts.append(
        _table(
            ["item", "value"],
            [[_e(k), _e(v)] for k, v in sorted(data["provenance"].items())],
        )
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    out: str | Path, data: Mapping[str, Any], figs: Mapping[str, tuple[str, str]]
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into folder ``out``, atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / REPORT_HTML, out / REPORT_JSON
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    with atomic_path(html_path) as tmp:
        tmp.write_text(render_html(data, figs), encoding="utf-8")
    for path in (html_path, json_path):
        path.chmod(0o644)  # a report is for reading; the temporary file was private
    return html_path, json_path
