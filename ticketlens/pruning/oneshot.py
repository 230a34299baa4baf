"""One-shot pruning of a trained model, layer by layer on calibration data: magnitude, Wanda
(Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models") and
SparseGPT (Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
Pruned in One-Shot"), unstructured or N:M (:mod:`ticketlens.pruning.patterns`).

The procedure follows the reference code, ``locuslab/wanda`` (``lib/prune.py``:
``prune_magnitude``, ``prune_wanda``, ``prune_sparsegpt``; ``lib/layerwrapper.py``) and
``IST-DASLab/sparsegpt`` (``sparsegpt.py``: ``SparseGPT.add_batch``, ``fasterprune``):

- the transformer layers are pruned in order; the statistics of layer ``L``'s prunable inputs
  are gathered with layers ``< L`` already pruned (for SparseGPT: pruned and updated), and all
  prunable matrices of layer ``L`` are pruned from the same pass (as the references do);
- every matrix is pruned to the same ``sparsity`` (uniform per layer), or to exactly N of
  every M weights along its input dimension.

Where the references keep the hidden states entering each layer (``inps``/``outs``), this
module runs the whole model on the calibration batches for every layer and stops the forward
as soon as the layer's last prunable module has received its input (a forward pre-hook raises
a private exception): statistics are accumulated batch by batch (Wanda: ``sum_t x_tj^2`` per
input feature; SparseGPT: the Gram matrix ``X X^T``), so memory is the model plus one layer's
statistics, at the cost of re-running the earlier layers (``L^2/2`` layer forwards in all).
Padding tokens (``attention_mask == 0``) are left out of the statistics.

All matrices are handled as ``(out, in)`` (GPT-2's ``Conv1D`` weights, layout ``conv1d``, are
transposed and back). The model is used in eval mode under ``torch.no_grad``; its parameters
are swapped for the pruned tensors while it runs and put back before returning, so the input
model is left unchanged and the result holds new tensors.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import ConfigError, ModelError
from ticketlens.data.batching import TensorData, collate
from ticketlens.pruning.ops import magnitude_prune
from ticketlens.pruning.patterns import Pattern, nm_mask

METHODS = ("magnitude", "wanda", "sparsegpt")
Batch = dict[str, torch.Tensor]
Forward = Callable[[torch.nn.Module, Batch], Any]
Progress = Callable[[int, "float | None"], None]  # (layers done, None): a StepCallback


# ---------------------------------------------------------------------------- calibration
@dataclass(frozen=True)
class Calibration:
    """Seeded calibration data: the training examples used (indices into the split, in the
    order drawn, for the run's record) and their padded batches."""

    indices: tuple[int, ...]
    seed: int
    batches: tuple[Batch, ...] = field(repr=False)

    @property
    def tokens(self) -> int:
        """Real (non-padding) tokens in all batches."""
        return sum(int(b["attention_mask"].sum()) for b in self.batches)


def pick_calibration(num_examples: int, count: int, seed: int) -> list[int]:
    """``count`` distinct example indices out of ``num_examples``, a pure function of ``seed``
    (the first ``count`` of a seeded permutation, like the references' seeded sampling)."""
    if count < 1:
        raise ConfigError(f"calibration needs at least 1 example, got {count}")
    if count > num_examples:
        raise ConfigError(f"calibration asks for {count} examples but the training split has "
                          f"only {num_examples}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(num_examples, generator=g)[:count].tolist()


def calibration_batches(data: TensorData, count: int, seed: int, *, pad_id: int,
                        batch_size: int = 16) -> Calibration:
    """``count`` training examples picked by :func:`pick_calibration`, in padded batches of
    ``batch_size`` (``input_ids``, ``attention_mask``, ``token_type_ids``; no labels). The
    examples are as tokenized (truncated to the task's ``max_length``)."""
    if batch_size < 1:
        raise ConfigError(f"calibration batch size must be >= 1, got {batch_size}")
    idx = pick_calibration(len(data), count, seed)
    batches = []
    for start in range(0, len(idx), batch_size):
        b = collate(data, idx[start:start + batch_size], pad_id)
        b.pop("labels")
        batches.append(b)
    return Calibration(tuple(idx), seed, tuple(batches))


def default_forward(model: torch.nn.Module, batch: Batch) -> Any:
    """``model(input_ids, attention_mask[, token_type_ids])`` on the model's device; token
    types only for models that embed them (GPT-2 would add a token embedding)."""
    from ticketlens.models.load import uses_token_types

    device = next(model.parameters()).device
    keys = ["input_ids", "attention_mask"]
    if uses_token_types(model.config) and "token_type_ids" in batch:
        keys.append("token_type_ids")
    return model(**{k: batch[k].to(device) for k in keys if k in batch})


# ---------------------------------------------------------------------------- per-matrix maths
def magnitude_mask(weight: torch.Tensor, sparsity: float,
                   pattern: Pattern | None = None) -> torch.Tensor:
    """Keep mask of ``weight`` ``(out, in)`` by ``|W|``: the smallest ``round(sparsity *
    numel)`` of the whole matrix pruned (the Wanda paper's magnitude baseline is per layer,
    not per output row; ties and rounding as :func:`ticketlens.pruning.ops.magnitude_prune`),
    or N:M along the input dimension."""
    if pattern is not None:
        return nm_mask(weight.abs().float(), pattern.n, pattern.m)
    ones = {"w": torch.ones(weight.shape, dtype=torch.bool)}
    return magnitude_prune({"w": weight}, ones, sparsity, scope="tensor")["w"].to(weight.device)


def wanda_scores(weight: torch.Tensor, sq_norms: torch.Tensor) -> torch.Tensor:
    """Wanda's importance ``S_ij = |W_ij| * ||X_j||_2`` of ``weight`` ``(out, in)``, where
    ``sq_norms[j] = sum_t x_tj^2`` over the calibration tokens (``in``,). (Wanda's
    ``WrappedGPT.scaler_row`` is this sum divided by the number of samples: a constant
    factor, so the same ranking.)"""
    return weight.abs().float() * sq_norms.float().sqrt().reshape(1, -1)


def wanda_mask(scores: torch.Tensor, sparsity: float,
               pattern: Pattern | None = None) -> torch.Tensor:
    """Keep mask from Wanda scores ``(out, in)``: in every output row the ``round(sparsity *
    in)`` lowest scores are pruned (Sun et al. compare weights per output, not per layer;
    stable sort as the reference, which takes ``int(sparsity * in)``: the same count
    whenever it is a whole number), or N:M along the input dimension."""
    if pattern is not None:
        return nm_mask(scores, pattern.n, pattern.m)
    k = round(sparsity * scores.shape[1])
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if k:
        drop = torch.sort(scores, dim=1, stable=True).indices[:, :k]
        keep.scatter_(1, drop, False)
    return keep


@torch.no_grad()
def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float,
                    pattern: Pattern | None = None, *, mask: torch.Tensor | None = None,
                    blocksize: int = 128, percdamp: float = 0.01,
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT on one matrix: ``(new weight, keep mask)``, both ``(out, in)``.

    ``hessian`` is ``X X^T`` ``(in, in)`` summed over the calibration tokens (any positive
    multiple gives the same result: the reference's ``H = 2/n X X^T``). Follows
    ``IST-DASLab/sparsegpt`` ``SparseGPT.fasterprune``: inputs never seen (``H_jj = 0``) get a
    zero weight; ``H += percdamp * mean(diag H) * I``; ``U`` = upper Cholesky factor of
    ``H^-1``; the columns are visited in blocks of ``blocksize`` with lazy batch updates. In
    each block the mask is chosen adaptively by ``w^2 / U_jj^2`` (the OBS saliency
    ``w_q^2 / [H_F^-1]_qq``): the ``round(sparsity * block size)`` lowest of the block are
    pruned (unstructured), or the ``m - n`` lowest of every ``m`` columns in each row (N:M).
    Each pruned weight's error is spread over the row's later columns, the OBS update
    ``delta = -w_q / [H_F^-1]_qq * [H_F^-1]_{:,q}`` for the not yet visited set ``F``.

    ``mask`` (bool, ``True`` = keep) fixes the mask instead of selecting it (the wanda repo's
    ``AblateGPT`` use), so only the update is SparseGPT's.

    One deliberate difference: the reference prunes ``tmp <= sorted(tmp)[int(s * numel)]``
    in a block, i.e. one weight more than ``s * numel`` (and more on ties); here exactly
    ``round(s * numel)`` per block, so every matrix gets the sparsity asked. The N:M path and
    the updates are the reference's (checked against a port of it to 2e-4 on a 48x300 layer).
    """
    W = weight.detach().float().clone(memory_format=torch.contiguous_format)  # (out, in)
    rows, cols = W.shape
    H = hessian.detach().float().to(W.device).clone(memory_format=torch.contiguous_format)
    if H.shape != (cols, cols):
        raise ValueError(f"hessian of shape {tuple(H.shape)} for a weight of shape {(rows, cols)}")
    m = pattern.m if pattern is not None else 0
    if m and blocksize % m:  # N:M groups must not straddle two blocks
        blocksize = m * max(1, blocksize // m)
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(cols, device=W.device)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)  # U with H^-1 = U^T U
    pruned = torch.zeros_like(W, dtype=torch.bool)

    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d1 = torch.diag(Hinv1)
        if mask is not None:
            prune1 = ~mask[:, i1:i2].to(W.device, torch.bool)
        elif pattern is None:
            saliency = W1 ** 2 / d1.reshape(1, -1) ** 2
            prune1 = torch.zeros_like(W1, dtype=torch.bool)
            k = round(sparsity * saliency.numel())
            if k:
                prune1.view(-1)[torch.topk(saliency.flatten(), k, largest=False).indices] = True
        else:
            prune1 = torch.zeros_like(W1, dtype=torch.bool)

        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if mask is None and pattern is not None and i % m == 0:
                # N:M: choose this group's pruned columns now, from the updated weights
                sal = W1[:, i:i + m] ** 2 / d1[i:i + m].reshape(1, -1) ** 2
                drop = torch.topk(sal, m - pattern.n, dim=1, largest=False).indices
                prune1.scatter_(1, i + drop, True)
            q = w.clone()
            q[prune1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1

        W[:, i1:i2] = Q1
        pruned[:, i1:i2] = prune1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])  # the lazy update of the later blocks
    return W, ~pruned


def layer_error(weight: torch.Tensor, new_weight: torch.Tensor, gram: torch.Tensor) -> float:
    """``||W X - W' X||_F^2`` over the calibration tokens, from ``gram = X X^T`` ``(in, in)``:
    ``sum_r dw_r G dw_r^T`` (weights ``(out, in)``; a bias cancels)."""
    delta = weight.float() - new_weight.float()
    return float(((delta @ gram.float()) * delta).sum())


# ---------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class LayerStat:
    """One pruned matrix: its kept fraction, the calibration tokens its statistics came from,
    and (when measured) ``error = ||W X - W' X||^2`` summed over those tokens and ``rel_error
    = error / ||W X||^2``, with ``X`` its inputs given the earlier layers already pruned."""

    name: str
    layer: int
    role: str
    density: float
    tokens: int
    error: float | None
    rel_error: float | None
    seconds: float


@dataclass(frozen=True)
class OneShotResult:
    """``masks``: CPU bool tensors (``True`` = kept), shaped as the parameters. ``weights``:
    new tensors (the parameters' device, dtype and layout), zero wherever pruned: the trained
    weights elsewhere (magnitude, Wanda) or SparseGPT's updated ones. ``peak_memory_bytes``:
    the CUDA allocator's peak during the call on a GPU (its peak counter is reset at the
    start), else the process's peak resident size so far (``ru_maxrss``: an upper bound that
    includes whatever ran before)."""

    method: str
    sparsity: float
    pattern: str
    masks: dict[str, torch.Tensor]
    weights: dict[str, torch.Tensor]
    stats: tuple[LayerStat, ...]
    seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str  # "cuda_max_allocated" | "process_max_rss"

    def to_dict(self) -> dict[str, Any]:
        """The figures (no tensors), JSON-ready."""
        return {"method": self.method, "sparsity": self.sparsity, "pattern": self.pattern,
                "seconds": self.seconds, "peak_memory_bytes": self.peak_memory_bytes,
                "peak_memory_kind": self.peak_memory_kind,
                "stats": [vars(s).copy() for s in self.stats]}


class _StopForward(Exception):
    """Raised by a hook once the layer being pruned has seen its inputs."""


class InputStats:
    """Streaming statistics of one module's inputs (never the activations themselves)."""

    def __init__(self, cols: int, gram: bool, device: torch.device):
        self.sq = torch.zeros(cols, device=device)  # sum_t x_tj^2 (Wanda)
        self.gram = torch.zeros(cols, cols, device=device) if gram else None  # X X^T
        self.tokens = 0

    def add(self, x: torch.Tensor) -> None:  # x: (tokens, in)
        x = x.float()
        self.tokens += x.shape[0]
        self.sq += (x * x).sum(dim=0)
        if self.gram is not None:
            self.gram.addmm_(x.t(), x)


def layer_groups(anatomy: Anatomy, names: Sequence[str]) -> list[tuple[int, list[str]]]:
    """The order of pruning: ``(layer, names)`` by layer; tensors of no layer (``-1``, e.g. a
    pooler or a classifier added by ``include``) come last. Progress counts these groups."""
    groups: dict[int, list[str]] = {}
    for name in names:
        groups.setdefault(anatomy.tensor(name).layer, []).append(name)
    return sorted(groups.items(), key=lambda g: (g[0] < 0, g[0]))


def _module_of(model: torch.nn.Module, name: str, layout: str) -> torch.nn.Module:
    module = model.get_submodule(name.rsplit(".", 1)[0])
    ok = isinstance(module, torch.nn.Linear) if layout == "linear" else \
        type(module).__name__ == "Conv1D"
    if not ok or name.rsplit(".", 1)[1] != "weight":
        raise ConfigError(f"{name}: one-shot pruning handles the weights of linear layers only "
                          f"(this is a {type(module).__name__})")
    return module


def _tokens(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """A module input ``(batch, seq, in)`` as ``(real tokens, in)``."""
    if keep is not None and x.dim() == 3 and tuple(keep.shape) == tuple(x.shape[:2]):
        return x[keep.to(x.device, torch.bool)]
    return x.reshape(-1, x.shape[-1])


def collect_inputs(model: torch.nn.Module, modules: Mapping[str, torch.nn.Module],
             stats: Mapping[str, InputStats], batches: Sequence[Batch],
             forward: Forward) -> None:
    """Run ``forward`` on every batch until all ``modules`` have received their input, adding
    each input to its statistics; the hooks are removed whatever happens."""
    state: dict[str, Any] = {"keep": None, "seen": set()}

    def hook(name: str) -> Callable:
        def pre(_module: torch.nn.Module, args: tuple) -> None:
            if name in state["seen"]:  # a module called twice in one forward: count once
                return
            stats[name].add(_tokens(args[0].detach(), state["keep"]))
            state["seen"].add(name)
            if len(state["seen"]) == len(modules):
                raise _StopForward
        return pre

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in modules.items()]
    try:
        for batch in batches:
            state["keep"], state["seen"] = batch.get("attention_mask"), set()
            try:
                forward(model, batch)
            except _StopForward:
                continue
            missing = sorted(set(modules) - state["seen"])
            raise ModelError(f"the forward pass never reached {missing[0]}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    finally:
        for h in handles:
            h.remove()


def oneshot_prune(
    model: torch.nn.Module,
    anatomy: Anatomy,
    names: Sequence[str] | None,
    calib_batches: Sequence[Batch],
    method: str,
    sparsity: float | None = None,
    pattern: Pattern | None = None,
    *,
    forward: Forward = default_forward,
    measure_error: bool = True,
    blocksize: int = 128,
    percdamp: float = 0.01,
    progress: Progress | None = None,
) -> OneShotResult:
    """Prune ``names`` (default: all of ``anatomy``) of a trained ``model`` in one shot.

    ``method``: ``magnitude`` (``|W|`` per matrix), ``wanda`` (``|W_ij| ||X_j||`` per output
    row) or ``sparsegpt`` (OBS reconstruction with weight updates); see the functions above.
    ``sparsity``: the fraction pruned in every matrix; with an N:M ``pattern`` it may be left
    out (it is ``1 - n/m``, and anything else is refused). ``calib_batches``: batches for
    ``forward(model, batch)`` (e.g. :attr:`Calibration.batches`), re-run for every layer; a
    batch's ``attention_mask`` marks the tokens counted. Magnitude needs them only for
    ``measure_error``. ``measure_error`` gathers ``X X^T`` for every matrix (Wanda then holds
    ``in x in`` per matrix instead of ``in``) to report each layer's reconstruction error.
    ``progress(done_layers, None)`` after each group of :func:`layer_groups`.
    """
    sparsity, modules = _checked(model, anatomy, names, method, sparsity, pattern)
    names = list(modules)
    need_data = method != "magnitude" or measure_error
    if need_data and not calib_batches:
        raise ConfigError(f"one-shot {method} needs calibration batches")
    infos = {n: anatomy.tensor(n) for n in names}
    params = {n: model.get_parameter(n) for n in names}
    device = next(iter(params.values())).device if params else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    gram = method == "sparsegpt" or measure_error

    originals: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    weights: dict[str, torch.Tensor] = {}
    stats: list[LayerStat] = []
    was_training = model.training
    t_start = time.perf_counter()
    model.eval()
    try:
        with torch.no_grad():
            for done, (layer, group) in enumerate(layer_groups(anatomy, names), start=1):
                t0 = time.perf_counter()
                inputs: dict[str, InputStats] = {}
                if need_data:
                    inputs = {n: InputStats(_in_features(params[n], infos[n].layout), gram,
                                             params[n].device) for n in group}
                    collect_inputs(model, {n: modules[n] for n in group}, inputs, calib_batches,
                             forward)
                for n in group:
                    t1 = time.perf_counter()
                    p, st = params[n], inputs.get(n)
                    new, keep, err, rel = prune_matrix(
                        p, infos[n].layout, st, method, sparsity, pattern,
                        blocksize=blocksize, percdamp=percdamp)
                    originals[n] = p.data
                    p.data = new  # the later layers see this layer pruned
                    weights[n] = new
                    masks[n] = keep.to("cpu", torch.bool).contiguous()
                    stats.append(LayerStat(n, layer, infos[n].role,
                                           float(keep.float().mean()),
                                           st.tokens if st is not None else 0, err, rel,
                                           time.perf_counter() - t1 + (t1 - t0) / len(group)))
                del inputs
                if progress is not None:
                    progress(done, None)
    finally:
        for n, original in originals.items():
            params[n].data = original
        model.train(was_training)
    seconds = time.perf_counter() - t_start
    peak, kind = peak_memory(device)
    return OneShotResult(method, float(sparsity), str(pattern) if pattern else "unstructured",
                         masks, weights, tuple(stats), seconds, peak, kind)


def _checked(model: torch.nn.Module, anatomy: Anatomy, names: Sequence[str] | None,
             method: str, sparsity: float | None, pattern: Pattern | None
             ) -> tuple[float, dict[str, torch.nn.Module]]:
    """:func:`oneshot_prune`'s request checked (one line each): the sparsity (from the
    pattern when left out), and the tensors to prune with their (linear) modules."""
    sparsity = checked_request(method, sparsity, pattern)
    names = list(anatomy.names if names is None else names)
    unknown = sorted(set(names) - set(anatomy.names))
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a prunable tensor of this model's anatomy")
    modules = {n: _module_of(model, n, anatomy.tensor(n).layout) for n in names}
    if pattern is not None:
        for n in names:
            cols = _in_features(model.get_parameter(n), anatomy.tensor(n).layout)
            if cols % pattern.m:
                raise ConfigError(f"{n}: input dimension {cols} is not a multiple of M="
                                  f"{pattern.m}, so it cannot hold the {pattern} pattern")
    return sparsity, modules


def checked_request(method: str, sparsity: float | None, pattern: Pattern | None) -> float:
    """The method known and the sparsity in ``[0, 1)`` (from the pattern when left out, and
    the pattern's when both are given), else one line."""
    if method not in METHODS:
        raise ConfigError(f"unknown one-shot method {method!r} (methods: {', '.join(METHODS)})")
    if pattern is not None:
        if sparsity is not None and abs(sparsity - pattern.sparsity) > 1e-9:
            raise ConfigError(f"pattern {pattern} prunes {pattern.sparsity:g} of every matrix, "
                              f"not the sparsity {sparsity:g} asked")
        sparsity = pattern.sparsity
    if sparsity is None or not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"one-shot sparsity must be in [0, 1), got {sparsity}")
    return sparsity


def prune_matrix(p: torch.Tensor, layout: str, st: InputStats | None, method: str,
                  sparsity: float, pattern: Pattern | None, *, blocksize: int,
                  percdamp: float) -> tuple[torch.Tensor, torch.Tensor, float | None,
                                            float | None]:
    """One matrix pruned: (new weights in ``p``'s layout and dtype, its mask, the
    reconstruction error and its share of ``||W X||^2`` when ``X X^T`` was gathered)."""
    W = (p.detach() if layout == "linear" else p.detach().t()).float()  # (out, in)
    if method == "magnitude":
        keep = magnitude_mask(W, sparsity, pattern)
        new = W * keep
    elif method == "wanda":
        assert st is not None
        keep = wanda_mask(wanda_scores(W, st.sq), sparsity, pattern)
        new = W * keep
    else:
        assert st is not None and st.gram is not None
        new, keep = sparsegpt_prune(W, st.gram, sparsity, pattern, blocksize=blocksize,
                                    percdamp=percdamp)
    err = rel = None
    if st is not None and st.gram is not None:
        err = layer_error(W, new, st.gram)
        base = float(((W @ st.gram) * W).sum())
        rel = err / base if base > 0 else None
    if layout == "conv1d":
        new, keep = new.t(), keep.t()
    return new.to(p.dtype).contiguous(), keep, err, rel


def peak_memory(device: torch.device) -> tuple[int, str]:
    """The CUDA allocator's peak on a GPU, else the process's peak resident size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device)), "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"


def _in_features(p: torch.Tensor, layout: str) -> int:
    return p.shape[1] if layout == "linear" else p.shape[0]
