"""The training loop (on accelerate) and evaluation.

A *phase* trains from global step ``start`` to ``end`` of a schedule of ``total`` steps (linear
warm-up then linear decay), so late rewinding resumes the schedule where the rewind point was.
A phase is a pure function of its starting weights, mask and ``seed``: data order and dropout
are seeded per phase, so a resumed run repeats an interrupted round exactly.

Every optimizer step sees ``batch_size`` examples, split into ``grad_accum`` micro-batches and,
under several processes, across ranks (each rank takes a contiguous share of each
micro-batch), so the effective batch does not depend on the number of processes.

On CUDA a step does not wait for the device: batches go through pinned memory with
non-blocking copies, the running loss stays on the device and is read only when progress is
reported (every 25 steps), bf16 autocast by default (``--precision``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ticketlens.core import fault
from ticketlens.core.config import TrainConfig
from ticketlens.data.batching import TensorData, batch_stream, collate, eval_batches
from ticketlens.pruning.masking import MaskEnforcer

StepCallback = Callable[[int, float | None], None]  # (steps done in phase, loss or None)
# (model, batch) -> loss: replaces ``model(**batch).loss`` (distillation)
LossFn = Callable[[torch.nn.Module, dict], torch.Tensor]
# (step just finished, 1-based in the schedule) -> True to end the phase there (early-bird)
StopCheck = Callable[[int], bool]


@dataclass
class PhaseResult:
    steps: int
    train_loss: float
    wall_time_s: float
    captured: dict[str, torch.Tensor] | None = None  # weights at ``capture_at``


def _env_int(name: str, default: int) -> int:
    import os

    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def process_rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 alone). The one place that
    reads ``RANK``: before accelerate is set up, it is all there is to go on."""
    return _env_int("RANK", 0)


@dataclass(frozen=True)
class Threads:
    """How many torch threads a search uses, and why."""

    torch_threads: int
    cores_available: int  # the CPUs this process may run on (affinity, cgroup-free count)
    omp_num_threads: int | None  # OMP_NUM_THREADS, when set
    local_processes: int  # processes of this job on this machine (torchrun)

    def to_dict(self) -> dict[str, int | None]:
        return dict(self.__dict__)


def plan_threads() -> Threads:
    """As many torch threads as the cores this process may use, never more: the CPU
    affinity mask (taskset, a container's cpuset), divided among the job's local processes
    under torchrun, and capped by ``OMP_NUM_THREADS`` when it is set. Two processes of 2
    threads each on 2 cores run ~7x slower than one thread each (measured)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    local = max(1, _env_int("LOCAL_WORLD_SIZE", 1))
    omp = _env_int("OMP_NUM_THREADS", 0) or None
    n = max(1, cores // local)
    if omp is not None:
        n = max(1, min(n, omp))
    return Threads(n, cores, omp, local)


@contextlib.contextmanager
def torch_threads(plan: Threads) -> Any:
    """Use ``plan.torch_threads`` intra-op threads for the duration, then what was set."""
    before = torch.get_num_threads()
    torch.set_num_threads(plan.torch_threads)
    try:
        yield plan
    finally:
        torch.set_num_threads(before)


class Runtime:
    """accelerate's ``Accelerator`` (processes, devices, DDP) plus the precision, which is
    handled here: accelerate keeps mixed precision in process-wide state that refuses a
    second setting in one process (a notebook, or a test session, running searches with
    other settings), and resetting its private state is not ours to do. bf16 and fp16 are
    ``torch.autocast``; fp16 adds a ``GradScaler``. Everything else is the accelerator's."""

    def __init__(self, accelerator: Any, precision: str):
        self.accelerator = accelerator
        self.precision = precision  # fp32 | bf16 | fp16
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        device = accelerator.device.type
        self.scaler = torch.amp.GradScaler(device) if precision == "fp16" else None

    def __getattr__(self, name: str) -> Any:  # is_main_process, prepare_model, gather, ...
        return getattr(self.accelerator, name)

    @property
    def mixed_precision(self) -> str:
        return {"fp32": "no"}.get(self.precision, self.precision)

    def autocast(self) -> Any:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.accelerator.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, opt: Any) -> None:
        """Before clipping: gradients back to their true scale (fp16)."""
        if self.scaler is not None:
            self.scaler.unscale_(opt)

    def step(self, opt: Any) -> None:
        if self.scaler is None:
            opt.step()
        else:
            self.scaler.step(opt)  # skipped when the scaled gradients overflowed
            self.scaler.update()


def make_accelerator(tcfg: TrainConfig) -> Runtime:
    from accelerate import Accelerator

    device = tcfg.device
    cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if device.startswith("cuda:"):
        torch.cuda.set_device(int(device.split(":", 1)[1]))
    precision = tcfg.precision
    if precision == "auto":
        precision = "bf16" if (not cpu and torch.cuda.is_bf16_supported()) else "fp32"
    return Runtime(Accelerator(cpu=cpu, mixed_precision="no"), precision)


def check_same_on_all_ranks(acc: Any, masks: dict[str, torch.Tensor], names: list[str],
                            r: int) -> dict[str, Any] | None:
    """Every process computes round ``r``'s mask from the same synchronised weights; check
    that they agree (a checksum per rank, gathered) before anyone trains on it. Returns the
    manifest's ``extra["processes"]`` record under several processes (None alone)."""
    world = acc.num_processes
    if world == 1:
        return None
    import hashlib

    from ticketlens.core.masks import pack

    h = hashlib.sha256(b"".join(pack(masks[n]).tobytes() for n in names))
    mine = torch.tensor([int(h.hexdigest()[:15], 16)], device=acc.device)
    sums = acc.gather(mine).tolist()
    if len(set(sums)) != 1:
        raise RuntimeError(f"round {r}: the {world} processes computed different masks")
    return {"count": world, "mask_check": f"identical on {world} ranks"}


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move a batch to ``device``; to CUDA through pinned memory without blocking the host
    (the copy overlaps the previous step's kernels)."""
    if device.type == "cuda":
        return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
    return {k: v.to(device) for k, v in batch.items()}


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over ``warmup * total`` steps, then linear decay to 0 at ``total``."""
    w = round(warmup * total)
    if step < w:
        return (step + 1) / w
    return max(0.0, (total - step) / max(1, total - w))


def adamw(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """AdamW with the fused kernel where the device has one (CPU and CUDA: 3x faster than the
    per-tensor loop torch picks by default on CPU; the HF Trainer's default too)."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr)


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def train_phase(
    accelerator,
    model: torch.nn.Module,
    enforcer: MaskEnforcer,
    data: TensorData,
    *,
    tcfg: TrainConfig,
    lr: float,
    start: int,
    end: int,
    total: int,
    seed: int,
    pad_id: int,
    batch_fn: Callable | None = None,
    capture_at: int | None = None,
    on_step: StepCallback | None = None,
    loss_fn: LossFn | None = None,
    stop_check: StopCheck | None = None,
) -> PhaseResult:
    """Train ``model`` (already prepared by ``accelerator``) for steps ``start..end``.

    ``loss_fn(model, batch)`` replaces the model's own loss; ``stop_check(step)``, asked after
    each optimizer step, ends the phase early when it returns True (``PhaseResult.steps``
    then counts the steps taken)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)  # dropout
    batch_fn = batch_fn or (lambda idx: collate(data, idx, pad_id))
    opt = accelerator.prepare_optimizer(adamw(_param_groups(model, tcfg.weight_decay), lr))
    enforcer.apply_to_weights()
    base = accelerator.unwrap_model(model)  # state dict keys without DDP's "module."
    captured = _snapshot(base) if capture_at == start else None
    stream = batch_stream(data, tcfg.batch_size, seed)
    world, rank = accelerator.num_processes, accelerator.process_index
    micro = math.ceil(tcfg.batch_size / tcfg.grad_accum)
    loss_sum = torch.zeros((), device=accelerator.device)
    model.train()
    for step in range(start, end):
        fault.point("step")  # TICKETLENS_FAULT=kill:step:N (resume tests) dies here
        for group in opt.param_groups:
            group["lr"] = lr * lr_factor(step, total, tcfg.warmup)
        idx = next(stream)
        for m0 in range(0, len(idx), micro):
            chunk = idx[m0:m0 + micro]
            share = math.ceil(len(chunk) / world)
            mine = chunk[rank * share:(rank + 1) * share] or chunk[:1]
            batch = to_device(batch_fn(mine), accelerator.device)
            with accelerator.autocast():
                loss = model(**batch).loss if loss_fn is None else loss_fn(model, batch)
            # weight each micro-batch by its share of the optimizer step's examples
            accelerator.backward(loss * (len(mine) * world / len(idx)))
            loss_sum += loss.detach() * len(mine) * world / len(idx)
        enforcer.apply_to_grads()
        if tcfg.grad_clip:
            accelerator.unscale(opt)
            accelerator.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        accelerator.step(opt)
        enforcer.apply_to_weights()
        opt.zero_grad(set_to_none=True)
        if capture_at is not None and step + 1 == capture_at:
            captured = _snapshot(base)
        if on_step is not None:
            done = step + 1 - start
            report = done % 25 == 0 or step + 1 == end
            on_step(done, float(loss_sum) / done if report else None)
        if stop_check is not None and stop_check(step + 1):
            end = step + 1
            break
    steps = end - start
    _release(accelerator, opt)
    return PhaseResult(steps, float(loss_sum) / max(1, steps), time.perf_counter() - t0,
                       captured)


def _release(accelerator, opt) -> None:
    """Drop the accelerator's reference to this phase's optimizer (its Adam moments are as
    big as the model). ``Accelerator.free_memory`` would do it with a full ``gc.collect``,
    which costs 0.3 s a phase on tiny-bert, 7% of a round."""
    held = getattr(accelerator, "_optimizers", None)
    if isinstance(held, list) and opt in held:
        held.remove(opt)
    else:
        accelerator.free_memory()


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@torch.no_grad()
def evaluate(accelerator, model: torch.nn.Module, data: TensorData, *, batch_size: int,
             pad_id: int, batch_fn: Callable | None = None) -> tuple[torch.Tensor, float]:
    """(predictions in data order: class ids, or scores for a regression split; mean loss)
    over the whole split."""
    model.eval()
    batch_fn = batch_fn or (lambda idx: collate(data, idx, pad_id))
    preds = torch.empty(len(data), dtype=torch.float32 if data.regression else torch.long)
    loss_sum, n = 0.0, 0
    for idx in eval_batches(data, batch_size):
        batch = to_device(batch_fn(idx), accelerator.device)
        with accelerator.autocast():
            out = model(**batch)
        logits = out.logits.float()
        preds[idx] = (logits[:, 0] if data.regression else logits.argmax(-1)).cpu()
        loss_sum += float(out.loss) * len(idx)
        n += len(idx)
    model.train()
    return preds, loss_sum / max(1, n)


@torch.no_grad()
def evaluate_lm(accelerator, model: torch.nn.Module, data: TensorData, *, batch_size: int,
                batch_fn: Callable, causal: bool) -> float:
    """Mean loss per predicted token over the split (perplexity = exp of it). CLM labels are
    shifted inside the model, so a sequence of n tokens predicts n - 1."""
    model.eval()
    loss_sum, n = 0.0, 0
    for idx in eval_batches(data, batch_size):
        batch = to_device(batch_fn(idx), accelerator.device)
        with accelerator.autocast():
            out = model(**batch)
        labels = batch["labels"]
        count = int((labels[:, 1:] != -100).sum() if causal else (labels != -100).sum())
        loss_sum += float(out.loss) * count
        n += count
    model.train()
    return loss_sum / max(1, n)
