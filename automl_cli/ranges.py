"""What a searched parameter may take, and the rules it obeys wherever it is written.

A search item's `"targets": [min, max]` with `"log"` and `"step"`, and a TAO custom range's
`valid_min` / `valid_max` laid over a searched parameter, both become one NumberRange, so
both are held to the same rules (min < max; a log scale needs min > 0; an int range's step
is whole; a step fits in the range). A search item's `"weights"` and a custom range's
`option_weights` share one rule too (one weight per choice). Rules about which keys may
appear together, and the types of single values, are JSON Schema's
(automl_cli/config/*.schema.json); the rules that compare values live here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """How a source spells its bounds, for messages: ("min", "max") in a search item's
    targets, ("valid_min", "valid_max") in a custom range; and the JSON paths to blame."""

    low_name: str
    high_name: str
    at: list  # the bounds as a whole (targets, or the custom range entry)
    step_at: list | None = None


@dataclass(frozen=True)
class NumberRange:
    kind: str  # "float" | "int"
    low: float
    high: float
    log: bool = False
    step: float | None = None

    def checked(self, file: Path, bounds: Bounds, why_log: str = "") -> "NumberRange":
        """This range, or a ConfigError naming `file` and the path of the rule it breaks.
        `why_log` says where a log scale came from when it is not the range's own source."""
        if not self.low < self.high:
            raise ConfigError(file, bounds.at, f"expected {bounds.low_name} < {bounds.high_name}, got "
                                               f"{self.low:g} and {self.high:g}")
        if self.log and self.low <= 0:
            raise ConfigError(file, bounds.at, f"a log range needs {bounds.low_name} > 0, got {self.low:g}{why_log}")
        if self.step is not None:
            step_at = bounds.step_at if bounds.step_at is not None else bounds.at
            if self.kind == "int" and self.step != int(self.step):
                raise ConfigError(file, step_at, f"an int range needs a whole step, got {self.step:g}")
            if self.step > self.high - self.low:
                raise ConfigError(file, step_at, f"step {self.step:g} is larger than the range "
                                                 f"[{self.low:g}, {self.high:g}]")
        return self

    def fields(self) -> dict:
        """What a Param takes from its range (kind too: a custom range may turn a choice into a number)."""
        return {"kind": self.kind, "low": self.low, "high": self.high, "log": self.log, "step": self.step}


def choice_weights(weights: list | None, count: int, file: Path, at, per: str) -> tuple[float, ...]:
    """The chance of each of `count` choices: `weights` (positive, by the schema) scaled to sum
    to 1, or equal chances when none are given."""
    if weights is None:
        return tuple(1 / count for _ in range(count))
    if len(weights) != count:
        raise ConfigError(file, at, f"expected {count} weights, one per {per}, got {len(weights)}")
    total = sum(weights)
    return tuple(w / total for w in weights)
