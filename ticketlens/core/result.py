"""The base of every result type: a frozen dataclass whose ``to_dict()`` is JSON-safe.

Every analysis returns a :class:`Result` subclass (``@dataclass(frozen=True)``).
``to_dict()`` gives plain JSON data: numbers, strings, lists, dicts with string keys, and
``None`` where a number is missing -- never NaN or an infinity, which ``json`` would write as
the invalid tokens ``NaN`` / ``Infinity``. A subclass that shapes its dictionary itself
overrides :meth:`Result._data` (not ``to_dict``), so :func:`json_safe` always runs last.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: results via their ``to_dict()``, other dataclasses
    field by field, mappings as dicts with string keys, tuples, sets and numpy arrays as
    lists, numpy scalars as Python numbers; NaN and infinities become ``None``."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Result):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: json_safe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars (no numpy import needed here)
        return json_safe(value.tolist())
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


class Result:
    """Mixin of the frozen result dataclasses: ``to_dict()`` returns JSON-safe data (see the
    module doc). By default the dictionary holds every field; override :meth:`_data` to
    shape it (derived figures, fields left out)."""

    __slots__ = ()

    def _data(self) -> Mapping[str, Any]:
        assert dataclasses.is_dataclass(self)
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``json.dumps(..., allow_nan=False)`` accepts it); ``None`` where a
        number is missing (NaN) or unbounded."""
        return json_safe(self._data())
