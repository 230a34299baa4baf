"""Transfer (Chen et al. 2020): does a ticket found on one task work on another?

The ticket's mask is trained on the other task from the source run's rewind point, beside the
other task's dense model and a random mask with the same per-tensor sparsity, all from the
same rewind weights, schedule and data order. The task head is re-initialised (from the seed)
when the number of labels differs. The result is a run directory: round 0 the dense model on
the new task, round 1 the transferred ticket, the random mask as its control.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import DataConfig, FindConfig
from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.run import RunPaths, is_run, open_run
from ticketlens.models.load import head_parameter_names
from ticketlens.pruning.imp import _Search, derive_seed
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import prepare
from ticketlens.pruning.verdict import verdict


def transfer(source: str | Path, data: DataConfig, out: str | Path, *,
             reporter: Reporter | None = None, overwrite: bool = False) -> Path:
    reporter = reporter or Reporter()
    src = open_run(source)
    if not src.has_weights:
        raise RunFormatError(f"{src.path}: has no weights (an imported mask?); transfer needs "
                             "the rewind point that `ticketlens find` stores")
    out = Path(out)
    if is_run(out) and not overwrite:
        raise ConfigError(f"{out}: a run already exists; pass --overwrite or choose another -o")
    if out.exists() and overwrite and is_run(out):
        import shutil

        shutil.rmtree(out)
    cfg = FindConfig.from_dict(src.manifest["config"])
    cfg = dataclasses.replace(cfg, data=data)
    setup = prepare(cfg)
    if setup.anatomy.shapes != src.anatomy.shapes:
        raise ConfigError("the new task's model has other prunable weights than the source run")
    rewind = src.weights("rewind")
    model_state = setup.model.state_dict()
    mismatched = [k for k, v in rewind.items() if k in model_state
                  and tuple(v.shape) != tuple(model_state[k].shape)]
    if any(k not in head_parameter_names(setup.model) for k in mismatched):
        raise ConfigError("the new task needs another vocabulary than the source run (e.g. a "
                          "file task on a from-scratch preset); transfer between built-in "
                          "tasks, or with a pretrained model")
    start = {**model_state, **{k: v for k, v in rewind.items()
                               if k in model_state and k not in mismatched}}
    search = _Search(setup, RunPaths(out), None, reporter)
    search.manifest["transfer"] = {
        "source": str(src.path.resolve()), "source_task": src.task,
        "source_round": src.ticket_round, "source_sparsity": src.ticket.sparsity,
        "head_reinitialised": mismatched,
    }
    step = src.manifest.get("rewind", {}).get("step", 0) or 0
    step = step if step < setup.total_steps else 0
    ticket_mask = src.mask()
    seed = derive_seed(cfg.seed, "transfer")
    search.manifest["status"] = "running"
    search._save()
    arms = (("dense", M.ones_like(ticket_mask)), ("ticket", ticket_mask))
    for i, (label, masks) in enumerate(arms):
        result, metrics = search._train(f"transfer: {label}", start, masks, step, seed)
        if i == 0:
            search.manifest["rewind"]["weights"] = search._save_weights("rewind", start)
            search.manifest["weights"] = {"rewind": search.manifest["rewind"]["weights"],
                                          "dense": search._save_weights(0, search.base
                                                                        .state_dict())}
        search._record_round(i, masks, result, metrics, amount=0.0)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "random_mask"))
    rnd = M.random_masks_like(ticket_mask, g)
    M.save_masks(search.paths.control_mask("random_mask"), rnd, control="random_mask")
    result, metrics = search._train("transfer: random mask", start, rnd, step, seed)
    search.manifest["controls"]["random_mask"] = {
        "sparsity": M.sparsity(rnd), "metrics": metrics, "steps": result.steps,
        "wall_time_s": round(result.wall_time_s, 3), "ticket_round": 1,
        "mask": search.paths.rel(search.paths.control_mask("random_mask"))}
    search.manifest["ticket_round"] = 1
    search.manifest["weights"]["ticket"] = search.paths.rel(search.paths.weights(1))
    search.manifest["verdict"] = verdict(search.manifest, cfg.prune.tolerance,
                                         required=("random_mask",))
    search.manifest["status"] = "complete"
    search._save()
    v = search.manifest["verdict"]
    reporter.line(f"[bold]{'TRANSFERS' if v['winning'] else 'DOES NOT TRANSFER'}[/bold]: "
                  f"{v['reason']}")
    return out

