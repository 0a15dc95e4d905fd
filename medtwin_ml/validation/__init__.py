"""Credibility evidence for surrogates: how far, and where, a surrogate can be trusted.

* :mod:`~medtwin_ml.validation.metrics`: error metrics and the Clarke error grid;
* :mod:`~medtwin_ml.validation.context`: the context of use and its acceptance
  criteria (ASME V&V 40);
* :mod:`~medtwin_ml.validation.domain`: the validity detector serving uses for
  ``in_domain``;
* :mod:`~medtwin_ml.validation.uncertainty`: split conformal prediction intervals;
* :mod:`~medtwin_ml.validation.study`: the surrogate-versus-solver study;
* :mod:`~medtwin_ml.validation.report`: the HTML page and ``report.json``;
* :mod:`~medtwin_ml.validation.validate`: ``medtwin validate`` end to end.

Only numpy, pandas and pydantic are needed to import this package; matplotlib,
onnxruntime and mlflow are imported where they are used.
"""

from medtwin_ml.validation.context import AcceptanceCriterion, ContextOfUse
from medtwin_ml.validation.domain import ValidityDetector, case_features, feature_names
from medtwin_ml.validation.study import StudyResult, draw_cases, run_study
from medtwin_ml.validation.uncertainty import coverage, fit_conformal, intervals
from medtwin_ml.validation.validate import ValidationOutcome, validate_bundle

__all__ = [
    "AcceptanceCriterion",
    "ContextOfUse",
    "StudyResult",
    "ValidationOutcome",
    "ValidityDetector",
    "case_features",
    "coverage",
    "draw_cases",
    "feature_names",
    "fit_conformal",
    "intervals",
    "run_study",
    "validate_bundle",
]
