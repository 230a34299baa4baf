"""The public Python API: ``import ticketlens as tl``.

Every name is imported lazily by ``ticketlens.__getattr__`` so ``import ticketlens`` stays
light (no torch until a function that trains or builds a model is called). Analyses share
one shape, ``analysis(runs_or_masks, *, by=..., round=..., ...) -> Result``, with a frozen
``Result`` that has ``to_dict()``:

- ``tl.overlap(runs, *, by="weight"|"head"|"neuron"|"ffn", round=None) -> OverlapResult``
- ``tl.survival(run, *, round=None) -> SurvivalResult``
- ``tl.sparsity_profile(run, *, by="role") -> ProfileResult``
- ``tl.graph(run, *, round=None) -> NetworkResult``
- ``tl.attribute(run, *, texts=(), n=16, units=False, ...) -> AttributionResult``

and the commands that make runs return :class:`~ticketlens.core.run.Run` objects:

- ``tl.find(cfg, out) -> Run``, ``tl.transfer(run, out, task=...) -> Run``,
  ``tl.import_masks(paths, out, fmt=...) -> list[Run]``, ``tl.open_run(path) -> Run``.

``tl.export(run, out) -> ExportResult`` writes a ticket as an HF model folder (physically
smaller when whole heads or neurons are pruned) and ``tl.load_pruned(folder)`` loads it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ticketlens.core.config import DataConfig, FindConfig
from ticketlens.core.run import Run, open_run

PathLike = str | os.PathLike[str]


def find(cfg: FindConfig | None = None, out: PathLike = "runs/ticket", *,
         overwrite: bool = False, progress: bool = False) -> Run:
    """Run (or resume) a ticket search with ``cfg`` (default: the embedded tiny-bert on the
    built-in sentiment task) into ``out``; returns the opened run."""
    from ticketlens.pruning.imp import find as _find
    from ticketlens.pruning.progress import Reporter, RichReporter

    reporter = RichReporter() if progress else Reporter()
    return open_run(_find(cfg or FindConfig(), out, reporter=reporter, overwrite=overwrite))


def transfer(run: Run | PathLike, out: PathLike, *, task: str | DataConfig,
             overwrite: bool = False, progress: bool = False) -> Run:
    """Train ``run``'s ticket on ``task`` (a task name, or a full :class:`DataConfig`)
    beside the new task's dense model and a random mask; returns the new run."""
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.transfer import transfer as _transfer

    data = task if isinstance(task, DataConfig) else DataConfig(task=task)
    source = run.path if isinstance(run, Run) else run
    reporter = RichReporter() if progress else Reporter()
    return open_run(_transfer(source, data, out, reporter=reporter, overwrite=overwrite))


def import_masks(paths: Sequence[PathLike] | PathLike, out: PathLike, *, fmt: str,
                 model: str = "", task: str = "", seed: int | None = None) -> list[Run]:
    """Import masks made by other tools (``bert-experiments``, ``torch-prune``,
    ``safetensors``, ``npz``) as runs under ``out``."""
    from ticketlens.importers import import_masks as _import

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return [open_run(p) for p in _import(fmt, [str(p) for p in items], Path(out),
                                         model=model, task=task, seed=seed)]


def attribute(run: Run | PathLike, *, texts: Sequence[str] = (),
              pairs: Sequence[str] | None = None, n: int = 16, units: bool = False,
              k: int = 3, n_steps: int = 32) -> Any:
    """Token (and with ``units``, head/neuron) attribution of the dense model and its
    ticket (captum); an :class:`~ticketlens.analysis.results.AttributionResult`."""
    from ticketlens.analysis.attribution import attribute_run

    r = run if isinstance(run, Run) else open_run(run)
    return attribute_run(r, texts=texts, pairs=pairs, n=n, units=units, k=k, n_steps=n_steps)


def magnitude_mask(weights: Any, sparsity: float, *, scope: str = "global") -> dict[str, Any]:
    """One-shot magnitude pruning of ``weights`` (name -> tensor, e.g. a run's
    ``weights("rewind")`` restricted to its prunable names) to ``sparsity``: numpy bool
    masks, ranked across all tensors (``global``) or per tensor (``tensor``)."""
    from ticketlens.core.masks import as_bool
    from ticketlens.pruning import ops

    masks = ops.magnitude_prune(weights, ops.ones_like(weights), sparsity, scope)
    return {n: as_bool(m) for n, m in masks.items()}


def runs(*paths: PathLike) -> list[Run]:
    """Every run at or below ``paths`` (a run directory or a folder of runs), opened."""
    from ticketlens.core.run import find_runs

    return [open_run(p) for path in paths for p in find_runs(path)]


def export(run: Run | PathLike, out: PathLike, *, round: int | None = None,
           slice: bool = True, overwrite: bool = False) -> Any:
    """Write ``run``'s ticket (or round ``round``) to ``out`` as an HF model folder with the
    mask baked in, sliced where whole heads or FFN neurons are removable; an
    :class:`~ticketlens.exporter.ExportResult`."""
    from ticketlens.exporter import export_run

    return export_run(run, out, round=round, slice=slice, overwrite=overwrite)


def load_pruned(path: PathLike) -> Any:
    """The model in a folder written by ``ticketlens export`` (sliced or not), in eval mode;
    safetensors only, no remote code."""
    from ticketlens.exporter import load_pruned as _load

    return _load(path)
