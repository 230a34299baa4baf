"""The public Python API: ``import ticketlens as tl``.

Every name is imported lazily (``ticketlens.exports``) so ``import ticketlens`` stays light
(no torch until a function that trains or builds a model is called).

**The analysis contract.** Every analysis has one shape,
``analysis(runs_or_masks, *, by=..., round=..., ...) -> Result``:

- ``runs_or_masks`` is read by one helper, :func:`ticketlens.analysis.inputs.as_inputs`: a
  run directory or a folder of runs, a :class:`~ticketlens.core.run.Run`, typed masks
  (:class:`~ticketlens.analysis.inputs.TicketMasks`, or a result that is masks such as
  :func:`magnitude_mask`'s), ``(run, arm)``, the older ``(name, anatomy, masks)`` tuples, or
  a list of these;
- ``by=`` names the level where an analysis has more than one (``overlap``: weight, head,
  neuron, ffn), and is accepted with its one level elsewhere (``survival``/``graph``: unit,
  ``sparsity_profile``: role) so generic code can pass it; ``round=`` picks a run's IMP round
  (default: the ticket) where the analysis reads masks;
- the result is a frozen dataclass deriving :class:`~ticketlens.core.result.Result`, exported
  as ``tl.<Name>``, whose ``to_dict()`` is plain JSON (None where a number is missing);
- a problem with the inputs is one :class:`~ticketlens.core.errors.AnalysisError` (a
  :class:`~ticketlens.core.errors.TicketlensError`, and a ``ValueError``), one line.

==========================================================  ==============================
``tl.overlap(runs, *, by="weight", round=None)``            :class:`OverlapResult`
``tl.methods_overlap(run, *, by="weight")``                 :class:`OverlapResult`
``tl.survival(run, *, by="unit", round=None)``              :class:`SurvivalResult`
``tl.sparsity_profile(run, *, by="role")``                  :class:`ProfileResult`
``tl.graph(run, *, by="unit", round=None)``                 :class:`NetworkResult`
``tl.sweep_stats(runs, *, by="weight", ...)``               :class:`SweepStats`
``tl.early_bird(run)``                                      :class:`EarlyBirdResult` | None
``tl.attribute(run, *, texts=(), n=16, units=False, ...)``  :class:`AttributionResult`
``tl.magnitude_mask(run_or_weights, sparsity, *, scope)``   :class:`MagnitudeMask`
``tl.head_roles(run, *, round=None, ...)``                  :class:`HeadRolesResult`
``tl.head_roles_over(runs, *, round=None, ...)``            :class:`RolesOverSeedsResult`
``tl.stability(run, *, round=None, rewinds=None, ...)``     :class:`StabilityResult`
``tl.circuit(run, *, round=None, ablation="mean", ...)``    :class:`CircuitResult`
``tl.export(run, out, *, round=None)``                      :class:`ExportResult`
==========================================================  ==============================

Results of results: ``tl.group_summary(OverlapResult, groups) -> GroupSummary``,
``tl.runs_graph(OverlapResult) -> RunsGraphResult``. The commands that make runs return
:class:`~ticketlens.core.run.Run` objects: ``tl.find(cfg, out)``, ``tl.transfer(run, out,
task=...)``, ``tl.import_masks(paths, out, fmt=...)`` (a list), ``tl.open_run(path)``,
``tl.runs(*paths)``; ``tl.load_pruned(folder)`` loads what ``tl.export`` wrote.
``tl.figure(result_or_runs, *, kind=None)`` is the plotly figure the report draws for it.
``docs/api.md`` lists every result type (``tests/test_api_doc.py`` checks it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketlens.analysis.inputs import RunsOrMasks, as_runs, one_run
from ticketlens.core.config import DataConfig, FindConfig
from ticketlens.core.run import Run, open_run

if TYPE_CHECKING:
    from plotly.graph_objects import Figure
    from transformers import PreTrainedModel

    from ticketlens.analysis.results import AttributionResult
    from ticketlens.exporter import ExportResult
    from ticketlens.pruning.stability import StabilityResult

PathLike = str | os.PathLike[str]


def find(cfg: FindConfig | None = None, out: PathLike = "runs/ticket", *,
         overwrite: bool = False, progress: bool = False) -> Run:
    """Run (or resume) a ticket search with ``cfg`` (default: the embedded tiny-bert on the
    built-in sentiment task) into ``out``; returns the opened run."""
    from ticketlens.pruning.imp import find as _find
    from ticketlens.pruning.progress import Reporter, RichReporter

    reporter = RichReporter() if progress else Reporter()
    return open_run(_find(cfg or FindConfig(), out, reporter=reporter, overwrite=overwrite))


def transfer(run: RunsOrMasks, out: PathLike, *, task: str | DataConfig,
             overwrite: bool = False, progress: bool = False) -> Run:
    """Train ``run``'s ticket on ``task`` (a task name, or a full :class:`DataConfig`)
    beside the new task's dense model and a random mask; returns the new run."""
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.transfer import transfer as _transfer

    source = one_run(run, what="transfer", needs="its weights and settings")
    data = task if isinstance(task, DataConfig) else DataConfig(task=task)
    reporter = RichReporter() if progress else Reporter()
    return open_run(_transfer(source.path, data, out, reporter=reporter,
                              overwrite=overwrite))


def import_masks(paths: Sequence[PathLike] | PathLike, out: PathLike, *, fmt: str,
                 model: str = "", task: str = "", seed: int | None = None) -> list[Run]:
    """Import masks made by other tools (``bert-experiments``, ``torch-prune``,
    ``safetensors``, ``npz``) as runs under ``out``."""
    from ticketlens.importers import import_masks as _import

    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return [open_run(p) for p in _import(fmt, [str(p) for p in items], Path(out),
                                         model=model, task=task, seed=seed)]


def runs(*paths: PathLike) -> list[Run]:
    """Every run at or below ``paths`` (a run directory or a folder of runs), opened."""
    return list(as_runs(list(paths), what="runs"))


def attribute(run: RunsOrMasks, *, texts: Sequence[str] = (),
              pairs: Sequence[str] | None = None, n: int = 16, units: bool = False,
              k: int = 3, n_steps: int = 32) -> AttributionResult:
    """Token (and with ``units``, head/neuron) attribution of the dense model and its
    ticket (captum) of one run made by ``find``."""
    from ticketlens.analysis.attribution import attribute_run

    r = one_run(run, what="attribute", needs="its dense and ticket weights")
    return attribute_run(r, texts=texts, pairs=pairs, n=n, units=units, k=k, n_steps=n_steps)


def stability(run: RunsOrMasks, *, round: int | None = None,
              rewinds: Sequence[str] | None = None, points: int = 11, seed: int | None = None,
              save: bool = True, progress: bool = False) -> StabilityResult:
    """Frankle et al. 2020's instability analysis of one run's round ``round`` (default: the
    ticket; 0: dense): two copies trained from each start in ``rewinds`` and the error along
    the linear path between them (:func:`ticketlens.pruning.stability.stability`); recorded
    in the run unless ``save=False``."""
    from ticketlens.pruning.progress import Reporter, RichReporter
    from ticketlens.pruning.stability import stability as _stability

    r = one_run(run, what="stability", needs="its config and rewind weights")
    return _stability(r, round=round, rewinds=rewinds, points=points, seed=seed,
                      reporter=RichReporter() if progress else Reporter(), save=save)


def export(run: RunsOrMasks, out: PathLike, *, round: int | None = None,
           slice: bool = True, overwrite: bool = False) -> ExportResult:
    """Write ``run``'s ticket (or round ``round``) to ``out`` as an HF model folder with the
    mask baked in, sliced where whole heads or FFN neurons are removable."""
    from ticketlens.exporter import export_run

    r = one_run(run, what="export", needs="its trained weights")
    return export_run(r, out, round=round, slice=slice, overwrite=overwrite)


def load_pruned(path: PathLike) -> PreTrainedModel:
    """The model in a folder written by ``ticketlens export`` (sliced or not), in eval mode;
    safetensors only, no remote code."""
    from ticketlens.exporter import load_pruned as _load

    return _load(path)


def figure(result: Any, *, kind: str | None = None) -> Figure:
    """The plotly figure the report draws for ``result``: runs (metric vs sparsity; in any
    form :func:`ticketlens.analysis.inputs.as_inputs` reads, a folder of runs too), or an
    analysis result (``OverlapResult``, ``SurvivalResult``,
    ``ProfileResult``, ``AttributionResult``, ``SweepStats``, ``OverlapMatrix``,
    ``EarlyBirdResult``, ``CompressResult``, ``StabilityResult``). ``kind`` picks one where the report draws
    several (``ticketlens.report.gallery.kinds(result)`` lists them). In a notebook the figure
    shows inline; ``fig.write_html(path)`` saves it."""
    from ticketlens.report.gallery import figure as _figure

    def run_like(x: Any) -> bool:
        return isinstance(x, (Run, str, os.PathLike))

    if run_like(result) or (isinstance(result, (list, tuple)) and result
                            and all(run_like(x) for x in result)):
        result = list(as_runs(result, what="figure", needs="their rounds' metrics"))
    return _figure(result, kind=kind)
