"""Deterministic fault injection for crash-safety tests (developers only; inert by default).

``TICKETLENS_FAULT=kill:POINT:N`` makes the process ``SIGKILL`` itself the ``N``-th time
(1-based, counted in this process) it passes ``POINT``:

- ``write``: an atomic write (``core.io.write_bytes_atomic``) has written and fsynced its
  ``.tmp-*`` file and is about to rename it over the final name; the kill leaves the temp
  file behind and the final file as it was (the worst moment for a write).
- ``step``: a training step (``pruning.train.train_phase``) is about to start; steps are
  counted over every phase the process trains (rounds, controls), from 0 on each start.

Several points may be given, comma separated (``kill:step:70,kill:write:9``: whichever comes
first). A resume test runs ``find`` with the variable, checks it died by ``SIGKILL`` where
it was told to, then runs it again without it, and compares the files with those of an
uninterrupted run: the kill lands at the same place on every machine, however fast, unlike a
kill after a sleep. ``make chaos`` keeps its kills at random moments.
"""

from __future__ import annotations

import os
import signal

from ticketlens.core.errors import ConfigError

ENV = "TICKETLENS_FAULT"
POINTS = ("write", "step")

# The one piece of process state in the package: how often each point was passed. Read only
# when the variable is set, so a normal run pays one dictionary lookup per point.
_passed: dict[str, int] = {}


def plan(spec: str) -> dict[str, int]:
    """``"kill:step:70,kill:write:9"`` -> ``{"step": 70, "write": 9}`` (a one-line
    :class:`ConfigError` when malformed: the command stops at its first fault point)."""
    out: dict[str, int] = {}
    for part in spec.split(","):
        action, _, rest = part.strip().partition(":")
        point, _, nth = rest.partition(":")
        if action != "kill" or point not in POINTS or not nth.isdigit() or int(nth) < 1:
            raise ConfigError(f"{ENV}={spec!r}: expected kill:POINT:N with POINT one of "
                             f"{', '.join(POINTS)} and N >= 1, comma separated")
        out[point] = int(nth)
    return out


def point(name: str, what: object = None) -> None:
    """Mark that the process passes fault point ``name`` (``what``: the file written, for a
    test that records the points); SIGKILL it if the plan says so."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if plan(spec).get(name) == _passed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
