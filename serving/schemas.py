"""Request and response bodies of the what-if API.

The bodies are generic: a case's ``parameters``, ``device`` and ``scenario`` are plain
JSON objects here and are validated against the twin's own models (the ones in
``data_schemas/<twin>.*.schema.json``) once the model, and so the twin, is known.
Unknown keys and non-finite numbers are refused at both levels.

Time in these bodies is in the time unit of the model's card (minutes for every twin
so far), which is why the field names end in ``_min``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CaseIn",
    "CohortQuery",
    "CompareResponse",
    "ErrorResponse",
    "ModelInfo",
    "ModelList",
    "PredictRequest",
    "PredictResponse",
    "boundary_models",
]

MAX_CASES = 1000
MAX_COHORT = 10_000
PERCENTILES = (5, 25, 50, 75, 95)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class CaseIn(_In):
    """One case: patient (or scene) parameters, device settings and scenario.

    Each object is validated against the twin's own model; see
    ``data_schemas/<twin>.parameters.schema.json`` and its siblings.
    """

    parameters: dict[str, Any] = Field(description="The twin's parameters model.")
    device: dict[str, Any] = Field(
        default_factory=dict, description="The twin's device model; {} for defaults."
    )
    scenario: dict[str, Any] = Field(description="The twin's scenario model.")


class CohortQuery(_In):
    """A virtual population drawn reproducibly from one of the twin's cohorts."""

    name: str = Field(description="Cohort of the twin, e.g. korean_adult.")
    n: int = Field(ge=1, le=MAX_COHORT, description="Number of virtual patients.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the draw.")


_COHORT_EXAMPLE = {
    "cohort": {"name": "korean_adult", "n": 100, "seed": 1},
    "design": {"basal_scale": 1.1, "breakfast_carbs_g": 60.0},
    "options": {"duration_min": 1440},
}


class PredictRequest(_In):
    """Explicit cases, or a cohort with one design point applied to every patient.

    Give exactly one of ``cases`` and ``cohort``. With ``cases``, the scenario's
    duration sets the horizon unless ``horizon_min`` is given (the cases of one
    request share one horizon). With ``cohort``, patients come from the twin's
    cohort sampler and cases from the twin's design rule: ``design`` holds the design
    variables of the twin's input domain (a missing one takes the middle of its
    range) and ``options`` the twin's case options (for diabetes ``duration_min`` and
    ``eating_rate_g_per_min``).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [_COHORT_EXAMPLE]})

    cases: list[CaseIn] | None = Field(
        None, min_length=1, max_length=MAX_CASES, description="Explicit cases."
    )
    horizon_min: float | None = Field(
        None,
        gt=0,
        le=43200,
        description="Horizon of the prediction [min]; default the scenario duration.",
    )
    cohort: CohortQuery | None = None
    design: dict[str, float] = Field(
        default_factory=dict,
        description="Design variables of a cohort query, by name with their units.",
    )
    options: dict[str, float | int | str] = Field(
        default_factory=dict, description="Case options of a cohort query."
    )
    worst_k: int = Field(
        5, ge=1, le=100, description="How many worst cases a cohort answer lists."
    )
    include_trajectories: bool = Field(
        True, description="Return each case's trajectories (explicit cases only)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> PredictRequest:
        if (self.cases is None) == (self.cohort is None):
            raise ValueError("give exactly one of 'cases' and 'cohort'")
        if self.cases is not None and (self.design or self.options):
            raise ValueError("'design' and 'options' belong to a cohort query")
        if self.cohort is not None and self.horizon_min is not None:
            raise ValueError(
                "a cohort query takes its horizon from options (e.g. duration_min)"
            )
        return self


class SignalOut(_Out):
    name: str
    unit: str
    description: str = ""


class ModelInfo(_Out):
    """One loaded surrogate, as ``GET /v1/models`` lists it."""

    name: str
    version: str
    twin: str
    kind: str
    time: dict[str, Any]
    parameters: list[SignalOut]
    controls: list[SignalOut]
    outputs: list[SignalOut]
    outcomes: list[SignalOut]
    input_domain: dict[str, Any]
    validation: dict[str, Any]
    uncertainty: dict[str, Any] | None
    validity_detector: bool
    cohorts: list[str]
    model_sha256: str


class ModelList(_Out):
    models: list[ModelInfo]


class Trajectory(_Out):
    unit: str
    values: list[float | None]
    lower: list[float | None] | None = None
    upper: list[float | None] | None = None


class CaseOut(_Out):
    index: int
    in_domain: bool
    reasons: list[str]
    outcomes: dict[str, float | None]
    trajectories: dict[str, Trajectory] | None = None


class PredictResponse(_Out):
    """Either ``cases`` (explicit cases) or ``cohort`` (a cohort query) is set."""

    model: str
    version: str
    twin: str
    time: dict[str, Any]
    outcome_units: dict[str, str]
    uncertainty: dict[str, Any] | None
    cases: list[CaseOut] | None = None
    cohort: dict[str, Any] | None = None


class CompareResponse(_Out):
    model: str
    version: str
    twin: str
    time: dict[str, Any]
    solver_seconds: float
    surrogate_seconds: float
    errors: dict[str, dict[str, float | None]]
    cases: list[dict[str, Any]]


class ErrorResponse(_Out):
    detail: Any


def boundary_models() -> dict[str, type[BaseModel]]:
    """The API's bodies by schema file stem, for ``data_schemas/``."""
    return {
        "api.predict_request": PredictRequest,
        "api.predict_response": PredictResponse,
        "api.compare_response": CompareResponse,
        "api.model_list": ModelList,
    }
