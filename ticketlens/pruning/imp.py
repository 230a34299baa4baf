"""Iterative magnitude pruning with rewinding, its controls and the verdict.

Stages, each skipped when its output is already recorded in the manifest (so a killed run
resumes by running the same command again, and ends with the same masks):

1. round 0: train dense from the initial weights, capturing the rewind point;
2. round r: prune ``rate`` of the remaining weights by magnitude of round r-1's trained
   weights, rewind the survivors, retrain; until ``target_sparsity`` (or a drop, optionally);
3. controls at the ticket's sparsity, same schedule and data order: a random mask with the
   same per-tensor sparsity on the rewind weights, and the ticket's mask on fresh weights;
4. the verdict (``ticketlens.pruning.verdict``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ticketlens.core import masks as M
from ticketlens.core.config import FindConfig
from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.io import write_bytes_atomic
from ticketlens.core.run import RunPaths, control_label, is_run, read_manifest, write_manifest
from ticketlens.pruning import manifest as MF
from ticketlens.pruning import objectives
from ticketlens.pruning.masking import MaskEnforcer
from ticketlens.pruning.progress import Reporter
from ticketlens.pruning.setup import Setup, prepare
from ticketlens.pruning.train import make_accelerator, train_phase
from ticketlens.pruning.verdict import CONTROLS, ONESHOT, matches_dense, verdict


def derive_seed(seed: int, *parts: int | str) -> int:
    """A stable 63-bit seed from a base seed and labels (no Python hash randomisation)."""
    import hashlib

    h = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(h[:8], "little") & (2**63 - 1)


def find(cfg: FindConfig, out: str | Path, *, reporter: Reporter | None = None,
         overwrite: bool = False) -> Path:
    """Run (or resume) a ticket search into the run directory ``out``; returns its path."""
    out = Path(out)
    reporter = reporter or Reporter()
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, only rank 0 talks and writes
        reporter = Reporter()
    paths = RunPaths(out)
    acc = make_accelerator(cfg.train)
    # Under several processes rank 0 alone may clear (--overwrite) or create the directory;
    # the others read what it left, after a barrier.
    manifest = _open_or_create(paths, cfg, overwrite) if acc.is_main_process else None
    acc.wait_for_everyone()
    if not acc.is_main_process:
        manifest = _open_or_create(paths, cfg, overwrite=False)
    if manifest is not None and manifest.get("status") == "complete" and all(
            c in manifest.get("controls", {}) for c in _wanted_controls(cfg)):
        reporter.line(f"{out}: already complete; nothing to do")
        return out
    if manifest is not None and manifest.get("status") == "complete":
        _check_can_add_controls(paths, manifest)  # before anything is written
    setup = prepare(cfg)
    reporter.line(
        f"ticketlens find: {setup.loaded.name} ({setup.anatomy.family}, "
        f"{setup.anatomy.num_prunable:,} prunable weights) on {setup.task.name} "
        f"({len(setup.train)} train / {len(setup.dev)} dev), seed {cfg.seed}, "
        f"{setup.total_steps} steps a round, rewind {setup.rewind}, "
        f"target sparsity {cfg.prune.target_sparsity:.0%} -> {out}")
    search = _Search(setup, paths, manifest, reporter, acc)
    search.run()
    return out


def _open_or_create(paths: RunPaths, cfg: FindConfig, overwrite: bool) -> dict | None:
    root = paths.root
    if root.exists() and not is_run(root):
        if root.is_dir() and not any(root.iterdir()):
            return None
        raise ConfigError(f"{root}: exists and is not a ticketlens run; choose another --out")
    if not is_run(root):
        return None
    if overwrite:
        shutil.rmtree(root)
        return None
    manifest = read_manifest(root)
    old = FindConfig.from_dict(manifest.get("config", {})).to_dict()
    # the one-shot control only adds to a run (finished or not): never a conflict
    old["prune"]["oneshot_control"] = cfg.prune.oneshot_control
    diff = _first_difference(old, cfg.to_dict())
    if diff:
        raise ConfigError(f"{root}: holds a run with other settings ({diff}); resume with the "
                          "same options, or pass --overwrite, or choose another --out")
    if cfg.prune.oneshot_control:
        manifest["config"].setdefault("prune", {})["oneshot_control"] = True
    return manifest


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    if (list(a) if isinstance(a, tuple | list) else a) != (list(b) if isinstance(
            b, tuple | list) else b):
        return f"{prefix.rstrip('.')}: {a!r} then, {b!r} now"
    return None


class _Search:
    def __init__(self, setup: Setup, paths: RunPaths, manifest: dict | None,
                 reporter: Reporter, acc: Any = None):
        self.s = setup
        self.cfg = setup.cfg
        self.paths = paths
        self.reporter = reporter
        self.acc = acc or make_accelerator(self.cfg.train)
        self.main = self.acc.is_main_process
        self.names = setup.anatomy.names
        self.shapes = setup.anatomy.shapes
        self.metric = setup.metric
        self.model = self.acc.prepare_model(setup.model)
        self.base = self.acc.unwrap_model(self.model)
        self.init_state = _cpu_state(self.base)
        self.manifest = manifest or MF.new_manifest(setup)
        self.masks: dict[str, dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ bookkeeping
    def _save(self) -> None:
        if self.main:
            write_manifest(self.paths.root, self.manifest)
        self.acc.wait_for_everyone()

    def _save_weights(self, what: str | int, state: dict[str, torch.Tensor]) -> str:
        from safetensors.torch import save

        path = self.paths.weights(what)
        if self.main:
            tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
            write_bytes_atomic(path, save(tensors, metadata={"format": "ticketlens.weights"}))
        return self.paths.rel(path)

    def _load_weights(self, what: str | int) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = self.paths.weights(what)
        if not path.is_file():
            raise RunFormatError(f"{path}: missing; the run cannot resume (use --overwrite)")
        return load_file(str(path))

    def _mask(self, r: int) -> dict[str, torch.Tensor]:
        if r not in self.masks:
            self.masks[r] = M.load_masks(self.paths.mask(r), expected=self.shapes)
        return self.masks[r]

    def _done_rounds(self) -> list[int]:
        return [int(r["round"]) for r in self.manifest["rounds"]]

    # ------------------------------------------------------------------ training
    def _train(self, label: str, start_state: dict[str, torch.Tensor],
               masks: dict[str, torch.Tensor], start: int, seed: int,
               capture_at: int | None = None):
        self.base.load_state_dict(start_state)
        enforcer = MaskEnforcer(self.base, masks)
        total = self.s.total_steps
        with self.reporter.phase(label, total - start) as on_step:
            result = train_phase(
                self.acc, self.model, enforcer, self.s.train, tcfg=self.cfg.train,
                lr=self.s.lr, start=start, end=total, total=total, seed=seed,
                pad_id=self.s.tokenizer.pad_id,
                batch_fn=objectives.batch_fn(self.s, self.s.train, seed),
                capture_at=capture_at, on_step=on_step)
        metrics = objectives.evaluate_metrics(self.acc, self.model, self.s,
                                              self.cfg.train.eval_batch_size)
        return result, {**metrics, "train_loss": result.train_loss}

    def _start_step(self) -> int:
        return self.s.rewind_step if self.s.rewind.mode == "step" else 0

    def _start_state(self, r: int) -> dict[str, torch.Tensor]:
        """Weights round ``r`` (>= 1) starts from, before masking."""
        if self.s.rewind.mode == "lr":
            return self._load_weights(r - 1)
        return self._load_weights("rewind")

    # ------------------------------------------------------------------ stages
    def run(self) -> None:
        self.manifest["status"] = "running"
        if self.main:
            self.s.tokenizer.save(self.paths.tokenizer)
        self.manifest["tokenizer"]["file"] = self.paths.rel(self.paths.tokenizer)
        self._save()
        if 0 not in self._done_rounds():
            self._round_zero()
        while not self._finished():
            self._next_round()
        ticket = self._ticket_round()
        self.manifest["ticket_round"] = ticket
        self.manifest["weights"]["ticket"] = self.paths.rel(self.paths.weights(ticket))
        for control in _wanted_controls(self.cfg):
            if control not in self.manifest["controls"]:
                self._control(control, ticket)
        self.manifest["verdict"] = verdict(self.manifest, self.cfg.prune.tolerance)
        self.manifest["status"] = "complete"
        # what a control added later starts from stays: the rewind point, or with lr
        # rewinding the round before the ticket
        self._cleanup_weights(keep={0, ticket} | (
            {ticket - 1} if self.s.rewind.mode == "lr" else set()))
        self._save()
        v = self.manifest["verdict"]
        self.reporter.line(f"[bold]{'WINNING TICKET' if v['winning'] else 'NO WINNING TICKET'}"
                           f"[/bold]: {v['reason']}")

    def _round_zero(self) -> None:
        ones = M.ones_like({n: self.init_state[n] for n in self.names})
        capture = self._start_step() if self.s.rewind.mode == "step" else None
        result, metrics = self._train("round 0 (dense)", self.init_state, ones, 0,
                                      derive_seed(self.cfg.seed, "round", 0), capture)
        rewind_state = result.captured if capture is not None else self.init_state
        self.manifest["rewind"]["weights"] = self._save_weights("rewind", rewind_state)
        self.manifest["weights"] = {
            "rewind": self.manifest["rewind"]["weights"],
            "dense": self._save_weights(0, _cpu_state(self.base)),
        }
        self._record_round(0, ones, result, metrics, amount=0.0)

    def _finished(self) -> bool:
        rounds = self.manifest["rounds"]
        last = rounds[-1]
        if last["round"] > 0 and self.cfg.prune.stop_on_drop and not matches_dense(
                rounds[0]["metrics"][self.metric], last["metrics"][self.metric],
                self.metric, self.cfg.prune.tolerance):
            return True
        return self._next_amount(last["round"]) <= 0.0

    def _next_amount(self, r: int) -> float:
        kept, total = M.count_kept(self._mask(r))
        return M.prune_amount_for_round(kept, total, self.cfg.prune.rate,
                                        self.cfg.prune.target_sparsity)

    def _next_round(self) -> None:
        prev = self.manifest["rounds"][-1]
        r = prev["round"] + 1
        trained = self._load_weights(prev["round"])
        amount = self._next_amount(prev["round"])
        masks = M.magnitude_prune({n: trained[n] for n in self.names},
                                  self._mask(prev["round"]), amount, self.cfg.prune.scope)
        self._check_same_on_all_ranks(masks, r)
        result, metrics = self._train(f"round {r}", self._start_state(r), masks,
                                      self._start_step(), derive_seed(self.cfg.seed, "round", r))
        self._record_round(r, masks, result, metrics, amount)

    def _check_same_on_all_ranks(self, masks: dict[str, torch.Tensor], r: int) -> None:
        """Every process computes the mask from the same synchronised weights; check that
        they agree (a checksum per rank, gathered) before anyone trains on it."""
        world = self.acc.num_processes
        if world == 1:
            return
        import hashlib

        h = hashlib.sha256(b"".join(M.pack(masks[n]).tobytes() for n in self.names))
        mine = torch.tensor([int(h.hexdigest()[:15], 16)], device=self.acc.device)
        sums = self.acc.gather(mine).tolist()
        if len(set(sums)) != 1:
            raise RuntimeError(f"round {r}: the {world} processes computed different masks")
        self.manifest["processes"] = {"count": world,
                                      "mask_check": f"identical on {world} ranks"}

    def _record_round(self, r: int, masks, result, metrics, amount: float) -> None:
        self.masks[r] = masks
        for old in [k for k in self.masks if k < r - 1]:  # reloaded from disk if needed
            del self.masks[old]
        if self.main:
            M.save_masks(self.paths.mask(r), masks, round=str(r))
        self._save_weights(r, _cpu_state(self.base))
        entry = {
            "round": r, "pruned_fraction_of_remaining": amount,
            "sparsity": M.sparsity(masks),
            "sparsity_per_tensor": M.sparsity_per_tensor(masks),
            "metrics": metrics, "steps": result.steps,
            "wall_time_s": round(result.wall_time_s, 3),
            "mask": self.paths.rel(self.paths.mask(r)),
        }
        self.manifest["rounds"].append(entry)
        self._cleanup_weights(keep=self._needed_rounds())
        self._save()
        self.reporter.line(
            f"round {r:>2}  sparsity {entry['sparsity']:6.1%}  {self.metric} "
            f"{metrics[self.metric]:.4f}  dev loss {metrics['loss']:.4f}  "
            f"{result.steps} steps  {result.wall_time_s:.1f}s")

    def _needed_rounds(self) -> set[int]:
        """Round weights a resume or the ticket choice may still need."""
        rounds = self.manifest["rounds"]
        last = rounds[-1]["round"]
        keep = {0, last, last - 1}
        m = self._last_matching()
        if m is not None:
            keep |= {m, m - 1}
        return keep

    def _cleanup_weights(self, keep: set[int]) -> None:
        if not self.main:
            return
        for r in self._done_rounds():
            if r not in keep:
                self.paths.weights(r).unlink(missing_ok=True)

    def _last_matching(self) -> int | None:
        rounds = self.manifest["rounds"]
        dense = rounds[0]["metrics"][self.metric]
        ok = [r["round"] for r in rounds[1:] if matches_dense(
            dense, r["metrics"][self.metric], self.metric, self.cfg.prune.tolerance)]
        return ok[-1] if ok else None

    def _ticket_round(self) -> int:
        rounds = self.manifest["rounds"]
        last = rounds[-1]["round"]
        if self.cfg.prune.stop_on_drop and last > 0:
            m = self._last_matching()
            return m if m is not None else min(1, last)
        return last

    def _control(self, control: str, ticket: int) -> None:
        ticket_masks = self._mask(ticket)
        seed = derive_seed(self.cfg.seed, "round", ticket)  # same data order as the ticket
        if control in ("random_mask", ONESHOT):
            if control == "random_mask":
                g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, "random_mask"))
                masks = M.random_masks_like(ticket_masks, g)
            else:  # the dense model's trained weights, pruned once to the ticket's counts
                dense = self._load_weights(0)
                masks = M.magnitude_like({n: dense[n] for n in self.names}, ticket_masks,
                                         self.cfg.prune.scope)
            start_state = self._start_state(ticket)
            if self.main:
                M.save_masks(self.paths.control_mask(control), masks, control=control)
        else:
            from ticketlens.models.load import reinit_like

            fresh = reinit_like(self.s.loaded, derive_seed(self.cfg.seed, "reinit"))
            start_state = _cpu_state(fresh)
            masks = ticket_masks
        result, metrics = self._train(f"control: {control_label(control)}", start_state,
                                      masks, self._start_step(), seed)
        entry = {"sparsity": M.sparsity(masks), "metrics": metrics, "steps": result.steps,
                 "wall_time_s": round(result.wall_time_s, 3), "ticket_round": ticket}
        if control in ("random_mask", ONESHOT):
            entry["mask"] = self.paths.rel(self.paths.control_mask(control))
        self.manifest["controls"][control] = entry
        self._save()
        self.reporter.line(f"control {control:<13} sparsity {entry['sparsity']:6.1%}  "
                           f"{self.metric} {metrics[self.metric]:.4f}")


def _check_can_add_controls(paths: RunPaths, manifest: dict) -> None:
    """A finished run keeps the weights a control starts from; refuse at once if not."""
    ticket = int(manifest.get("ticket_round", 0))
    lr = manifest.get("rewind", {}).get("mode") == "lr"
    needed = [paths.weights(0), paths.weights(ticket - 1) if lr else paths.weights("rewind")]
    missing = [p for p in needed if not p.is_file()]
    if missing:
        raise ConfigError(f"{paths.root}: a control cannot be added to this finished run "
                          f"({paths.rel(missing[0])} was not kept); run it again with "
                          "--overwrite")


def _wanted_controls(cfg: FindConfig) -> tuple[str, ...]:
    return (CONTROLS if cfg.prune.controls else ()) + (
        (ONESHOT,) if cfg.prune.oneshot_control else ())


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
