"""Virtual-patient parameters of the UVA/Padova type-1 model.

The keys are the column names of the published virtual-patient tables (the academic
UVA/Padova simulator, 2008 version), so a row of such a table pasted as a flat JSON
object is a valid input. Each field's unit is stated in its description.

Some columns describe the patient's basal state or belong to parts of the model that
a person with type-1 diabetes does not have (endogenous secretion, hepatic extraction
of secreted insulin). They are accepted so that whole table rows validate, and are not
read by the equations; :data:`UNUSED_KEYS` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import AliasChoices, ConfigDict, Field, model_validator

from medtwin_ml.config import BoundaryModel
from medtwin_ml.devices.glucose_controllers import (
    carb_ratio_g_per_u,
    correction_factor_mg_dl_per_u,
    total_daily_insulin_u,
)

__all__ = [
    "MODEL_KEYS",
    "STATE_NAMES",
    "UNUSED_KEYS",
    "DiabetesParameters",
    "PatientArrays",
]

# name: (unit, description, lower bound kind) for every key the equations read.
_USED: dict[str, tuple[str, str]] = {
    "BW": ("kg", "body weight"),
    "Gb": ("mg/dL", "basal plasma glucose, held at the basal rate u2ss"),
    "Ib": ("pmol/L", "basal plasma insulin, the set point of insulin action"),
    "kabs": ("1/min", "rate of intestinal absorption"),
    "kmax": ("1/min", "maximum rate of gastric emptying (and of grinding)"),
    "kmin": ("1/min", "minimum rate of gastric emptying"),
    "b": ("1", "fraction of the meal at which gastric emptying starts to slow"),
    "d": ("1", "fraction of the meal at which gastric emptying recovers"),
    "Vg": ("dL/kg", "distribution volume of glucose"),
    "Vi": ("L/kg", "distribution volume of insulin"),
    "Vmx": ("mg/kg/min per pmol/L", "insulin-dependent utilisation gain"),
    "Km0": ("mg/kg", "Michaelis-Menten constant of utilisation"),
    "k1": ("1/min", "rate from plasma to tissue glucose"),
    "k2": ("1/min", "rate from tissue to plasma glucose"),
    "p2u": ("1/min", "rate of insulin action on utilisation"),
    "m1": ("1/min", "rate from liver to plasma insulin"),
    "m2": ("1/min", "rate from plasma to liver insulin"),
    "m4": ("1/min", "peripheral degradation of plasma insulin"),
    "m30": ("1/min", "hepatic degradation of liver insulin"),
    "ki": ("1/min", "rate of the delayed insulin signal on the liver"),
    "kp1": ("mg/kg/min", "extrapolated endogenous production at zero glucose"),
    "kp2": ("1/min", "liver glucose effectiveness"),
    "kp3": ("mg/kg/min per pmol/L", "insulin action on the liver"),
    "f": ("1", "fraction of intestinal absorption that appears in plasma"),
    "ke1": ("1/min", "glomerular filtration rate"),
    "ke2": ("mg/kg", "renal threshold of glucose"),
    "Fsnc": ("mg/kg/min", "insulin-independent utilisation (brain, red cells)"),
    "Vm0": ("mg/kg/min", "insulin-independent part of the Michaelis-Menten maximum"),
    "kd": ("1/min", "rate from the first to the second subcutaneous compartment"),
    "ksc": ("1/min", "rate of the subcutaneous glucose compartment (sensor lag)"),
    "ka1": ("1/min", "absorption rate from the first subcutaneous compartment"),
    "ka2": ("1/min", "absorption rate from the second subcutaneous compartment"),
    "u2ss": ("pmol/kg/min", "steady-state basal insulin infusion rate"),
}

_UNUSED: dict[str, tuple[str, str]] = {
    "EGPb": ("mg/kg/min", "basal endogenous production (implied by kp1..kp3)"),
    "Ipb": ("pmol/kg", "basal plasma insulin mass (recomputed from u2ss)"),
    "Ilb": ("pmol/kg", "basal liver insulin mass (recomputed from u2ss)"),
    "Gpb": ("mg/kg", "basal plasma glucose mass (recomputed from u2ss)"),
    "Gtb": ("mg/kg", "basal tissue glucose mass (recomputed from u2ss)"),
    "Rdb": ("mg/kg/min", "basal glucose disposal"),
    "PCRb": ("1/min", "basal plasma clearance rate"),
    "m5": ("min kg/pmol", "hepatic extraction slope of secreted insulin"),
    "HEb": ("1", "basal hepatic extraction of secreted insulin"),
    "CL": ("L/min", "insulin clearance"),
    "isc1ss": ("pmol/kg", "steady first subcutaneous insulin (recomputed)"),
    "isc2ss": ("pmol/kg", "steady second subcutaneous insulin (recomputed)"),
    "i": ("1", "row number in the published table"),
    "Age": ("years", "age, from the table of therapy settings"),
    "patient_history": ("1", "history flag in the published table"),
}

STATE_NAMES: tuple[tuple[str, str], ...] = (
    ("Qsto1", "mg"),
    ("Qsto2", "mg"),
    ("Qgut", "mg"),
    ("Gp", "mg/kg"),
    ("Gt", "mg/kg"),
    ("Ip", "pmol/kg"),
    ("X", "pmol/L"),
    ("I1", "pmol/L"),
    ("Id", "pmol/L"),
    ("Il", "pmol/kg"),
    ("Isc1", "pmol/kg"),
    ("Isc2", "pmol/kg"),
    ("Gs", "mg/kg"),
)
"""The 13 states in order, with units: stomach solid and liquid glucose, gut glucose,
plasma and tissue glucose, plasma insulin, remote insulin action, the two delayed
insulin signals on the liver, liver insulin, the two subcutaneous insulin compartments
and subcutaneous glucose."""

MODEL_KEYS: tuple[str, ...] = (*_USED, "dosekempt")
UNUSED_KEYS: tuple[str, ...] = tuple(_UNUSED)

_NONNEGATIVE = {"kmin", "m4", "m30", "kp2", "kp3", "ke1", "ke2", "Fsnc", "Vm0", "Vmx"}
_FRACTIONS = {"b", "d"}


def _used_field(name: str) -> Any:
    unit, text = _USED[name]
    description = f"{text} [{unit}]"
    if name in _FRACTIONS:
        return Field(gt=0, lt=1, description=description)
    if name == "f":
        return Field(gt=0, le=1, description=description)
    if name in _NONNEGATIVE or name in ("u2ss", "kd", "m1", "m2"):
        return Field(ge=0, description=description)
    return Field(gt=0, description=description)


def _unused_field(name: str) -> Any:
    unit, text = _UNUSED[name]
    return Field(None, description=f"unused by the equations: {text} [{unit}]")


def _x0_field(k: int) -> Any:
    name, unit = STATE_NAMES[k - 1]
    return Field(
        None,
        validation_alias=AliasChoices(f"x0_{k}", f"x0_{k:2d}"),
        description=(
            f"initial {name} [{unit}]; give all of x0_1..x0_13 or none (then the "
            "case starts from the steady state at u2ss)"
        ),
    )


class DiabetesParameters(BoundaryModel):
    """One virtual patient of the UVA/Padova type-1 model.

    Keys are the published table's column names; units are in each description.
    Keys the equations do not read (:data:`UNUSED_KEYS`) are accepted; any other key
    is refused.
    """

    model_config = ConfigDict(populate_by_name=True)

    Name: str | None = Field(None, description="patient name in the published table")
    BW: float = _used_field("BW")
    Gb: float = _used_field("Gb")
    Ib: float = _used_field("Ib")
    kabs: float = _used_field("kabs")
    kmax: float = _used_field("kmax")
    kmin: float = _used_field("kmin")
    b: float = _used_field("b")
    d: float = _used_field("d")
    Vg: float = _used_field("Vg")
    Vi: float = _used_field("Vi")
    Vmx: float = _used_field("Vmx")
    Km0: float = _used_field("Km0")
    k1: float = _used_field("k1")
    k2: float = _used_field("k2")
    p2u: float = _used_field("p2u")
    m1: float = _used_field("m1")
    m2: float = _used_field("m2")
    m4: float = _used_field("m4")
    m30: float = _used_field("m30")
    ki: float = _used_field("ki")
    kp1: float = _used_field("kp1")
    kp2: float = _used_field("kp2")
    kp3: float = _used_field("kp3")
    f: float = _used_field("f")
    ke1: float = _used_field("ke1")
    ke2: float = _used_field("ke2")
    Fsnc: float = _used_field("Fsnc")
    Vm0: float = _used_field("Vm0")
    kd: float = _used_field("kd")
    ksc: float = _used_field("ksc")
    ka1: float = _used_field("ka1")
    ka2: float = _used_field("ka2")
    u2ss: float = _used_field("u2ss")
    dosekempt: float = Field(
        90000.0,
        gt=0,
        description=(
            "reference meal size used by gastric emptying before the first meal "
            "[mg of glucose]"
        ),
    )
    EGPb: float | None = _unused_field("EGPb")
    Ipb: float | None = _unused_field("Ipb")
    Ilb: float | None = _unused_field("Ilb")
    Gpb: float | None = _unused_field("Gpb")
    Gtb: float | None = _unused_field("Gtb")
    Rdb: float | None = _unused_field("Rdb")
    PCRb: float | None = _unused_field("PCRb")
    m5: float | None = _unused_field("m5")
    HEb: float | None = _unused_field("HEb")
    CL: float | None = _unused_field("CL")
    isc1ss: float | None = _unused_field("isc1ss")
    isc2ss: float | None = _unused_field("isc2ss")
    i: float | None = _unused_field("i")
    patient_history: float | None = _unused_field("patient_history")
    CR: float | None = Field(
        None,
        gt=0,
        description=(
            "carb ratio of the patient's therapy, from the published table of therapy "
            "settings; read by the basal-bolus controller and dataset boluses [g/U]"
        ),
    )
    CF: float | None = Field(
        None,
        gt=0,
        description=(
            "correction factor of the patient's therapy; read by the controllers "
            "[mg/dL/U]"
        ),
    )
    TDI: float | None = Field(
        None,
        gt=0,
        description=(
            "total daily insulin; when CR or CF is absent they follow the 500 and "
            "1800 rules from it [U/day]"
        ),
    )
    Age: float | None = _unused_field("Age")
    x0_1: float | None = _x0_field(1)
    x0_2: float | None = _x0_field(2)
    x0_3: float | None = _x0_field(3)
    x0_4: float | None = _x0_field(4)
    x0_5: float | None = _x0_field(5)
    x0_6: float | None = _x0_field(6)
    x0_7: float | None = _x0_field(7)
    x0_8: float | None = _x0_field(8)
    x0_9: float | None = _x0_field(9)
    x0_10: float | None = _x0_field(10)
    x0_11: float | None = _x0_field(11)
    x0_12: float | None = _x0_field(12)
    x0_13: float | None = _x0_field(13)

    @model_validator(mode="after")
    def _consistent(self) -> DiabetesParameters:
        if self.kmin > self.kmax:
            raise ValueError(
                f"kmin = {self.kmin} exceeds kmax = {self.kmax}; expected "
                "kmin <= kmax (1/min)"
            )
        given = [k for k in range(1, 14) if getattr(self, f"x0_{k}") is not None]
        if given and len(given) != 13:
            missing = [f"x0_{k}" for k in range(1, 14) if k not in given]
            raise ValueError(
                f"initial state is partial: missing {', '.join(missing)}; expected "
                "all of x0_1..x0_13 or none"
            )
        return self

    def initial_state(self) -> np.ndarray | None:
        """The explicit initial state, shape ``(13,)``, or ``None`` if not given."""
        if self.x0_1 is None:
            return None
        return np.array([getattr(self, f"x0_{k}") for k in range(1, 14)], dtype=float)

    @property
    def basal_u_per_h(self) -> float:
        """The steady basal rate ``u2ss`` in U/h (``u2ss * BW * 60 / 6000``)."""
        return self.u2ss * self.BW * 60.0 / 6000.0

    @property
    def total_daily_insulin_u(self) -> float:
        """``TDI`` when given, else twice the daily basal insulin [U/day]."""
        if self.TDI is not None:
            return self.TDI
        return float(total_daily_insulin_u(self.basal_u_per_h))

    @property
    def carb_ratio_g_per_u(self) -> float:
        """``CR`` when given, else the 500 rule ``500 / TDI`` [g/U]."""
        if self.CR is not None:
            return self.CR
        return float(carb_ratio_g_per_u(self.total_daily_insulin_u))

    @property
    def correction_factor_mg_dl_per_u(self) -> float:
        """``CF`` when given, else the 1800 rule ``1800 / TDI`` [mg/dL/U]."""
        if self.CF is not None:
            return self.CF
        return float(correction_factor_mg_dl_per_u(self.total_daily_insulin_u))


@dataclass(frozen=True)
class PatientArrays:
    """Parameters of ``n`` patients as arrays of shape ``(n,)``, for vectorised code."""

    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, patients: list[DiabetesParameters]) -> PatientArrays:
        return cls(
            {
                key: np.array([getattr(p, key) for p in patients], dtype=float)
                for key in MODEL_KEYS
            }
        )

    def __getattr__(self, key: str) -> np.ndarray:
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def n(self) -> int:
        return self.values["BW"].shape[0]
