"""The context of use: what question a surrogate answers, and how well it must.

In the risk-informed credibility framework of ASME V&V 40 (2018), adopted by the
FDA's guidance on computational modelling in device submissions, a model is judged
for one *context of use*: the question, the quantity of interest, the decision it
informs, and the model risk. The risk combines the model's *influence* on the
decision with the *consequence* of a wrong decision; the higher the risk, the more
evidence the acceptance criteria demand. Here a criterion may apply only from some
risk level on (``min_risk_level``), so one context file states how its criteria
follow from the risk.

The risk level is read from the usual three-by-three map, from 1 (low influence,
low consequence) to 5 (high influence, high consequence)::

    consequence \\ influence   low  medium  high
    high                         3     4      5
    medium                       2     3      4
    low                          1     2      3
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = [
    "AcceptanceCriterion",
    "ContextOfUse",
    "DecisionThreshold",
    "ModelRisk",
    "QuantityOfInterest",
]

Level = Literal["low", "medium", "high"]
_RANK = {"low": 0, "medium": 1, "high": 2}


class QuantityOfInterest(BoundaryModel):
    """The quantity the decision rests on: a scalar outcome of the twin."""

    name: str = Field(
        description="An outcome of the twin, e.g. 'time_below_70_pct' (percent of "
        "the horizon with plasma glucose under 70 mg/dL)."
    )
    unit: str = Field(description="Its unit, e.g. '%'.")
    description: str = ""


class DecisionThreshold(BoundaryModel):
    """The value of the quantity of interest at which the decision changes."""

    value: float = Field(description="Threshold, in the unit below.")
    unit: str
    description: str = ""


class ModelRisk(BoundaryModel):
    """Influence of the model on the decision and consequence of a wrong one."""

    influence: Level = Field(
        description="How much the decision rests on the model: 'low' when other "
        "evidence decides, 'high' when the model alone does."
    )
    consequence: Level = Field(
        description="Harm to a patient if the decision is wrong."
    )
    rationale: str = ""

    @property
    def level(self) -> int:
        """Model risk from 1 (lowest) to 5 (highest); see the module docstring."""
        return 1 + _RANK[self.influence] + _RANK[self.consequence]


class AcceptanceCriterion(BoundaryModel):
    """One pass-or-fail test on a metric of the study.

    Metric names, for an output ``y`` (e.g. ``plasma_glucose_mg_dl``) and an
    outcome ``q`` (e.g. ``time_below_70_pct``) of the in-domain study cases:
    ``y.mae``, ``y.rmse``, ``y.bias``, ``y.max_abs_error``, ``y.mard_pct``
    (positive outputs), ``y.coverage_pct`` (of the calibrated intervals),
    ``y.clarke_a_pct`` .. ``y.clarke_e_pct`` and ``y.clarke_ab_pct`` (outputs on
    the error grid), ``q.mae``, ``q.rmse``, ``q.bias``, ``q.max_abs_error``,
    ``decision_agreement_pct`` (cases where surrogate and solver fall on the same
    side of the decision threshold), ``n_cases``, ``in_domain_pct``,
    ``solver_checks_failed``. The same names prefixed ``corners.`` hold for the cases
    at the domain's corners.
    """

    name: str = Field(description="Short label shown in the report.")
    metric: str = Field(description="Metric name, see the class description.")
    at_most: float | None = Field(
        default=None, description="Pass when the metric is at most this value."
    )
    at_least: float | None = Field(
        default=None, description="Pass when the metric is at least this value."
    )
    unit: str = ""
    min_risk_level: int = Field(
        default=1,
        ge=1,
        le=5,
        description="The criterion applies when the model risk is at least this.",
    )
    rationale: str = ""

    @model_validator(mode="after")
    def _has_a_bound(self) -> AcceptanceCriterion:
        if self.at_most is None and self.at_least is None:
            raise ValueError(
                f"criterion {self.name!r} has neither at_most nor at_least; expected "
                "at least one bound"
            )
        if (
            self.at_most is not None
            and self.at_least is not None
            and self.at_least > self.at_most
        ):
            raise ValueError(
                f"criterion {self.name!r}: at_least {self.at_least} > at_most "
                f"{self.at_most}; expected an interval that can be met"
            )
        return self

    def judge(self, value: float) -> bool:
        """Whether ``value`` meets the criterion (a NaN never does)."""
        if value != value:
            return False
        if self.at_most is not None and value > self.at_most:
            return False
        return not (self.at_least is not None and value < self.at_least)

    @property
    def bound_text(self) -> str:
        parts = []
        if self.at_least is not None:
            parts.append(f">= {self.at_least:g}")
        if self.at_most is not None:
            parts.append(f"<= {self.at_most:g}")
        return " and ".join(parts) + (f" {self.unit}" if self.unit else "")


class ContextOfUse(BoundaryModel):
    """A context of use for ``medtwin validate`` (``configs/validation/*.yaml``)."""

    twin: str = Field(description="The twin the context is written for.")
    question: str = Field(description="The question the surrogate helps answer.")
    quantity_of_interest: QuantityOfInterest
    decision_threshold: DecisionThreshold
    model_risk: ModelRisk
    error_grid: list[str] = Field(
        default_factory=list,
        description="Outputs in mg/dL judged on the Clarke error grid, surrogate as "
        "the estimate and solver as the reference.",
    )
    acceptance_criteria: list[AcceptanceCriterion] = Field(min_length=1)

    def applicable_criteria(self) -> list[AcceptanceCriterion]:
        """The criteria that apply at this context's model risk."""
        level = self.model_risk.level
        return [c for c in self.acceptance_criteria if c.min_risk_level <= level]
