"""The errors medtwin-ml raises on purpose.

::

    MedtwinError
    ├── ConfigError            a boundary input (file, HTTP body, option) is invalid
    ├── UnknownTwinError       no twin is registered under the name asked for
    ├── SimulationError        a solver could not complete a case
    └── DatasetError           a dataset cannot be written or read
        ├── DatasetIncompleteError   generation has not finished (or was killed)
        └── DatasetIntegrityError    a shard does not match its recorded checksum

Every message names the offending value and what was expected, so that the CLI can
print it as it is, without a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigError",
    "DatasetError",
    "DatasetIncompleteError",
    "DatasetIntegrityError",
    "MedtwinError",
    "SimulationError",
    "UnknownTwinError",
]


class MedtwinError(Exception):
    """Base class of the errors medtwin-ml raises on purpose."""


class ConfigError(MedtwinError, ValueError):
    """An input that crossed a boundary is invalid.

    Attributes:
        source: where the input came from (a file path, ``"request body"``, ...).
        problems: one ``(key, value, expected)`` triple per problem found.
    """

    def __init__(self, source: str, problems: list[tuple[str, Any, str]]):
        self.source = str(source)
        self.problems = list(problems)
        lines = [f"invalid input in {self.source}:"]
        for key, value, expected in self.problems:
            lines.append(f"  {key}: got {_short(value)}; expected {expected}")
        super().__init__("\n".join(lines))


class UnknownTwinError(MedtwinError, KeyError):
    """No twin is registered under the requested name."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown twin {self.name!r}; registered twins: {', '.join(self.known)}"


class SimulationError(MedtwinError, RuntimeError):
    """A solver could not complete a case."""


class DatasetError(MedtwinError):
    """A dataset cannot be written or read."""


class DatasetIncompleteError(DatasetError):
    """The dataset's generation has not finished, or was interrupted."""


class DatasetIntegrityError(DatasetError):
    """A stored shard does not match the checksum recorded when it was written."""


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
