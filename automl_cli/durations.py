"""Durations as users write them: `90s`, `45m`, `12h`, `1d`, `1h30m`, or plain seconds."""
from __future__ import annotations

import math
import re

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
EXAMPLES = "e.g. 90s, 45m, 12h, 1d, 1h30m or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds (> 0) of a duration given as a number or text; ValueError says what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _PART.findall(text)
            units = [unit for _, unit in parts]
            # each unit once, largest first: "30m1h" or "1h1h" is more likely a typo than meant
            if not parts or "".join(n + u for n, u in parts) != text or units != sorted(set(units), key="dhms".index):
                raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}") from None
            seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise ValueError(f"expected a duration ({EXAMPLES}), got {value!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"expected a duration above 0 ({EXAMPLES}), got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of the forms parse_duration reads: 43200 -> 12h, 5400 -> 1h30m, 90 -> 1m30s."""
    whole = round(seconds)
    if abs(seconds - whole) > 1e-9 or whole == 0:
        return f"{seconds:g}s"
    out = ""
    for unit, size in _UNITS.items():
        count, whole = divmod(whole, size)
        if count:
            out += f"{count}{unit}"
    return out
