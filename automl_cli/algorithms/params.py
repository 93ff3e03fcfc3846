"""Algorithm parameters as users write them in config_automl.json: their specs and how a
user's values are checked. No numpy here: `automl algorithms` lists these without
loading the modules that compute (see catalogue.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class ParamSpec:
    """A documented algorithm parameter, as users write it in config_automl.json.
    `kind` converts the value; `auto` names a string that stands for "work it out"."""

    default: Any
    help: str
    kind: type = int
    minimum: float | None = None
    auto: str | None = None
    maximum: float | None = None


def resolve_params(cls, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with what the user gave, each checked against its ParamSpec.
    `cls` is anything with a `name` and `parameters` (an algorithm class, a catalogue entry)."""
    out = {k: spec.default for k, spec in cls.parameters.items()}
    for key, value in given.items():
        spec = cls.parameters.get(key)
        if spec is None:
            known = ", ".join(sorted(cls.parameters)) or "none"
            raise UsageError(f"algorithm '{cls.name}' has no parameter '{key}' (its parameters: {known})")
        if value is None or (spec.auto is not None and value == spec.auto):
            out[key] = spec.default
            continue
        try:
            if spec.kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
                raise ValueError
            value = spec.kind(value if spec.kind is not int else int(float(value)))
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{cls.name} parameter {key}: expected {spec.kind.__name__}"
                             f"{' (finite)' if spec.kind is float else ''}, got {value!r}") from None
        if spec.minimum is not None and value < spec.minimum:
            raise UsageError(f"{cls.name} parameter {key}: must be at least {spec.minimum}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise UsageError(f"{cls.name} parameter {key}: must be at most {spec.maximum}, got {value}")
        out[key] = value
    return out
