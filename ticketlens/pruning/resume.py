"""Opening the run directory of ``find``: a new run, or the run a killed ``find`` left.

:func:`open_or_create` returns the manifest to resume (None for a new run) after refusing,
in one line, a folder that holds something else or a run with other settings; the
informative controls (one-shot methods, ``--compare-methods``) and an unused
``--calibration`` only add to a run, so they never conflict. :func:`check_can_add_controls`
refuses at once a control that a finished run cannot train any more.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError
from ticketlens.core.record import Manifest, control_label
from ticketlens.core.run import RunWriter, is_run, read_manifest
from ticketlens.pruning.controls import CONTROLS, informative_flags, merge_flag, wanted_controls


def open_or_create(writer: RunWriter, cfg: FindConfig, overwrite: bool) -> Manifest | None:
    root = writer.root
    if root.exists() and not is_run(root):
        # empty, or what a run killed while writing its first manifest left (a .tmp-* file)
        if root.is_dir() and set(root.iterdir()) <= set(writer.paths.partial_files()):
            writer.remove_partial()
            return None
        raise ConfigError(f"{root}: exists and is not a ticketlens run; choose another --out")
    if not is_run(root):
        return None
    if overwrite:
        writer.clear()
        return None
    writer.remove_partial()
    manifest = read_manifest(root)
    if not manifest.config:  # imported masks: no config, no weights
        wants = [c for c in wanted_controls(cfg) if CONTROLS[c].needs_dense]
        raise ConfigError(
            f"{root}: holds imported masks without weights"
            + (f"; the {control_label(wants[0])} control prunes the trained dense model, so "
               "it needs a run made by `ticketlens find`" if wants else
               "; `find` cannot resume it: choose another --out"))
    old = FindConfig.from_dict(dict(manifest.config)).to_dict()
    # informative controls (one-shot, --compare-methods) only add to a run: never a conflict
    then = dict(old["prune"])
    for flag in informative_flags():
        old["prune"][flag] = getattr(cfg.prune, flag)
    # --calibration is free until something used it (a one-shot round or method control)
    calibrated = any("calibration" in x.extra for x in (*manifest.rounds,
                                                         *manifest.controls.values()))
    if not calibrated:
        old["prune"]["calibration"] = cfg.prune.calibration
    diff = first_difference(old, cfg.to_dict())
    if diff:
        raise ConfigError(f"{root}: holds a run with other settings ({diff}); resume with the "
                          "same options, or pass --overwrite, or choose another --out")
    merged = {f: merge_flag(then.get(f), getattr(cfg.prune, f)) for f in informative_flags()}
    if not calibrated:
        merged["calibration"] = cfg.prune.calibration
    if any(merged[f] != then.get(f) for f in merged):
        config = dict(manifest.config)
        config["prune"] = {**config.get("prune", {}), **merged}
        manifest = dataclasses.replace(manifest, config=config)
    return manifest


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    if (list(a) if isinstance(a, tuple | list) else a) != (list(b) if isinstance(
            b, tuple | list) else b):
        return f"{prefix.rstrip('.')}: {a!r} then, {b!r} now"
    return None


def check_can_add_controls(writer: RunWriter, manifest: Manifest, cfg: FindConfig) -> None:
    """A finished run keeps the weights a control starts from; refuse at once if not."""
    paths = writer.paths
    ticket = int(manifest.ticket_round or 0)
    lr = manifest.rewind is not None and manifest.rewind.mode == "lr"
    needed = [paths.weights(ticket - 1) if lr else paths.weights("rewind")]
    if any(CONTROLS[c].needs_dense for c in wanted_controls(cfg) if c not in manifest.controls):
        needed.insert(0, paths.weights(0))
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise ConfigError(f"{paths.root}: a control cannot be added to this finished run "
                          f"({paths.rel(missing[0])} was not kept); run it again with "
                          "--overwrite")
