"""How the report writes numbers: one place, so no table, hover text or title shows ``nan``,
``-0.000`` or ``p = 0``. Text helpers return ``str``; :func:`sig` prepares the numbers a figure
carries (fewer digits, no NaN), so the page stays small and plotly never sees a NaN."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"
TINY_P = "< 1e-300"  # a p-value that underflowed to 0.0: smaller than any double near it


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def num(v: Any, spec: str = ".3f", *, missing: str = NA) -> str:
    """``v`` in format ``spec``; ``missing`` (``n/a``) for None or NaN; never a signed zero
    ("-0.000")."""
    if _missing(v):
        return missing
    s = format(v, spec)
    mantissa = s.split("e")[0].split("E")[0]
    if s.startswith("-") and not any(c in "123456789" for c in mantissa):
        s = s[1:]
    return s


def pct(v: Any, digits: int = 1, *, missing: str = NA) -> str:
    """A fraction as a percentage: ``pct(0.8)`` -> ``80.0%``; ``missing`` for None or NaN
    (the terminal views write "–")."""
    return num(v, f".{digits}%", missing=missing)


def p_value(p: Any) -> str:
    """A p-value in two significant digits; ``< 1e-300`` where it underflowed to 0."""
    if _missing(p):
        return NA
    return TINY_P if p == 0 else num(p, ".2g")


def text(v: Any) -> str:
    """Any setting or label as text: ``n/a`` for None/NaN, floats in full but never ``-0.0``."""
    if _missing(v):
        return NA
    if isinstance(v, float):
        return num(v, "")  # the shortest round-trip form, as repr() writes it
    return str(v)


def sig(values: Any, digits: int = 4) -> Any:
    """Numbers for a figure, rounded to ``digits`` significant digits (nested lists and numpy
    arrays become lists); NaN and infinities become None (a gap), -0.0 becomes 0.0."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        return [sig(v, digits) for v in values]
    if not isinstance(values, float):  # ints, bools, None, strings as they are
        return values
    if not math.isfinite(values):
        return None
    return float(f"{values:.{digits}g}") + 0.0  # + 0.0 turns -0.0 into 0.0


# The range a metric can take (a confidence interval is clipped to it where drawn or written).
METRIC_RANGE = {"accuracy": (0.0, 1.0), "f1": (0.0, 1.0), "mcc": (-1.0, 1.0),
                "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0), "perplexity": (1.0, None)}


def clip_interval(metric: str, low: Any, high: Any) -> tuple[Any, Any, bool]:
    """``(low, high, clipped)``: the interval cut to ``metric``'s range (``METRIC_RANGE``);
    ``clipped`` says whether either end was cut. NaN ends stay NaN (no interval)."""
    lo, hi = METRIC_RANGE.get(metric, (None, None))
    clipped = False
    if not _missing(low) and lo is not None and low < lo:
        low, clipped = lo, True
    if not _missing(high) and hi is not None and high > hi:
        high, clipped = hi, True
    return low, high, clipped


def range_text(metric: str) -> str:
    """``"[0, 1]"``: the range of ``metric`` in words, for captions ("" when unbounded)."""
    lo, hi = METRIC_RANGE.get(metric, (None, None))
    if lo is None and hi is None:
        return ""
    left = format(lo, "g") if lo is not None else "−∞"
    right = format(hi, "g") if hi is not None else "∞"
    return f"[{left}, {right}]"


def prose(s: Any) -> str:
    """Text from the lower layers as users read it: control names by their labels
    (``random_mask`` -> ``random mask``), an infinite t statistic said in words."""
    import re

    from ticketlens.core.record import CONTROL_NAMES

    out = text(s)
    out = re.sub(r"\bt = -?inf\b", "t undefined (the paired differences are all equal)", out)
    out = re.sub(r"\b(" + "|".join(map(re.escape, CONTROL_NAMES)) + r")\b",
                 lambda m: CONTROL_NAMES[m.group(1)], out)
    return out
