"""One-shot pruning of a model folder too big to hold twice: one decoder layer at a time.

:func:`oneshot_prune_folder` is :func:`ticketlens.pruning.oneshot.oneshot_prune` (the same
statistics, mask selection and SparseGPT updates, by the same functions) streamed the way
the reference code streams it (``locuslab/wanda`` ``lib/prune.py``, ``IST-DASLab/sparsegpt``
``llama.py``: ``inps`` / ``outs``): the model is never built whole.

1. The part before the first decoder layer (embeddings; the attention mask and rotary
   positions the layers receive) runs on the calibration batches; its outputs, the hidden
   states entering layer 0, are kept (``batch x seq x hidden`` per batch, nothing more).
2. For each layer ``i``: its tensors are read from the folder's safetensors file, the layer
   is built around them (meta device, no copy), the statistics of its prunable inputs are
   gathered from the kept hidden states, its matrices are pruned, then the pruned layer
   runs on the kept states to give layer ``i + 1``'s inputs; layer ``i`` is written to its
   own shard of the output folder and freed.

So the memory is one layer, the embeddings, one layer's statistics and the calibration
hidden states, whatever the depth; and each layer runs twice, where the in-memory version
re-runs all earlier layers for every layer. The output folder is a Hugging Face model folder
(``config.json``, one shard per layer and one for the tensors outside the layers,
``model.safetensors.index.json``) with the masks (``masks.safetensors``, the run format of
``core.masks``) and the figures (``oneshot.json``) beside it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketlens.core.errors import ConfigError, ModelError
from ticketlens.pruning.oneshot import (
    Batch,
    InputStats,
    LayerStat,
    Progress,
    checked_request,
    collect_inputs,
    peak_memory,
    prune_matrix,
)
from ticketlens.pruning.patterns import Pattern

MASKS_FILE = "masks.safetensors"
RECORD_FILE = "oneshot.json"


@dataclass(frozen=True)
class FolderPruneResult:
    """What :func:`oneshot_prune_folder` wrote to ``output`` and measured: per matrix the
    same :class:`~ticketlens.pruning.oneshot.LayerStat` as the in-memory version;
    ``peak_memory_bytes`` the process's peak resident size (``ru_maxrss``: an upper bound
    that includes whatever ran before in the process)."""

    method: str
    sparsity: float
    pattern: str
    source: str
    output: str
    layers: int
    calibration_tokens: int
    stats: tuple[LayerStat, ...]
    seconds: float
    peak_memory_bytes: int
    peak_memory_kind: str

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k != "stats"}
        return {**d, "stats": [vars(s).copy() for s in self.stats]}


class _Calibration:
    """The calibration batches as they enter a decoder layer: per batch the hidden states,
    the other arguments of the layer call (mask, positions) and the 2-D attention mask that
    marks the real tokens (the statistics leave padding out)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def capture_kinds(self, trunk: torch.nn.Module, first: torch.nn.Module,
                      batches: Sequence[Batch], kinds: Sequence[str]) -> None:
        """:meth:`capture` once per attention kind of the layers (``config.layer_types``:
        ``full_attention``, ``sliding_attention``, ...; the trunk's one layer given each kind
        in turn), so that :meth:`select` can give every layer the mask of its own kind; the
        trunk passes each layer the mask of its kind, not layer 0's."""
        types = getattr(trunk.config, "layer_types", None)
        if not types or len(set(kinds)) < 2:
            self.capture(trunk, first, batches)
            return
        by_kind: dict[str, list[dict[str, Any]]] = {}
        try:
            for kind in dict.fromkeys(kinds):
                trunk.config.layer_types = [kind, *types[1:]]
                self.items = []
                self.capture(trunk, first, batches)
                by_kind[kind] = self.items
        finally:
            trunk.config.layer_types = types
        self.items = [{**item, "by_kind": {k: v[j]["kwargs"] for k, v in by_kind.items()}}
                      for j, item in enumerate(next(iter(by_kind.values())))]

    def select(self, kind: str | None) -> None:
        """The layer arguments (mask) of the attention kind ``kind`` for the next layer."""
        for item in self.items:
            if "by_kind" in item and kind is not None:
                item["kwargs"] = item["by_kind"][kind]

    def capture(self, trunk: torch.nn.Module, first: torch.nn.Module,
                batches: Sequence[Batch]) -> None:
        """Run ``trunk`` on every batch up to its first layer ``first``; keep what enters."""
        seen: dict[str, Any] = {}

        def pre(_m: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            seen["args"], seen["kwargs"] = args, kwargs
            raise _Stop

        handle = first.register_forward_pre_hook(pre, with_kwargs=True)
        try:
            for b in batches:
                try:
                    trunk(input_ids=b["input_ids"], attention_mask=b.get("attention_mask"),
                          use_cache=False)
                except _Stop:
                    pass
                else:
                    raise ModelError("the model never reached its first decoder layer")
                args, kwargs = seen.pop("args"), dict(seen.pop("kwargs"))
                hidden = args[0] if args else kwargs.pop("hidden_states")
                self.items.append({"hidden": hidden.detach(), "kwargs": kwargs,
                                   "attention_mask": b.get("attention_mask")})
        finally:
            handle.remove()

    @property
    def tokens(self) -> int:
        return sum(int(i["attention_mask"].sum()) if i["attention_mask"] is not None
                   else i["hidden"].shape[0] * i["hidden"].shape[1] for i in self.items)

    def advance(self, layer: torch.nn.Module) -> None:
        """Every batch's hidden states replaced by ``layer``'s outputs."""
        for item in self.items:
            item["hidden"] = _layer_forward(layer, item)


class _Stop(Exception):
    """Raised at the first decoder layer's input."""


def _layer_forward(layer: torch.nn.Module, item: Mapping[str, Any]) -> torch.Tensor:
    out = layer(item["hidden"], **item["kwargs"])
    return out[0] if isinstance(out, tuple) else out


@dataclass(frozen=True)
class _Plan:
    """The prunable tensors of the folder and how to reach them."""

    names: dict[int, list[str]]  # layer -> prunable tensor names (full)
    layouts: dict[str, str]
    roles: dict[str, str]
    prefix: str  # "model.layers."
    all_layers: dict[int, list[str]]  # layer -> every tensor name of the layer


def _plan(config: Any, weights: Any, include: Sequence[str], exclude: Sequence[str],
          pattern: Pattern | None) -> _Plan:
    from ticketlens.models.anatomy import build_anatomy
    from ticketlens.models.shards import layer_names, layer_prefix

    anatomy = build_anatomy(config, [(n, weights.shapes[n]) for n in weights.names],
                            include, exclude)
    prefix = layer_prefix(weights.names)
    by_layer: dict[int, list[str]] = {}
    for t in anatomy.tensors:
        if t.layer < 0 or not t.name.startswith(prefix):
            raise ConfigError(f"{t.name}: streaming prunes the decoder layers' matrices only")
        if t.layout != "linear":
            raise ConfigError(f"{t.name}: streaming handles nn.Linear weights only")
        if pattern is not None and t.shape[1] % pattern.m:
            raise ConfigError(f"{t.name}: input dimension {t.shape[1]} is not a multiple of "
                              f"M={pattern.m}, so it cannot hold the {pattern} pattern")
        by_layer.setdefault(t.layer, []).append(t.name)
    return _Plan(dict(sorted(by_layer.items())), {t.name: t.layout for t in anatomy.tensors},
                 {t.name: t.role for t in anatomy.tensors}, prefix,
                 layer_names(weights.names, prefix))


def oneshot_prune_folder(
    source: str | Path,
    output: str | Path,
    calib_batches: Sequence[Batch],
    method: str,
    sparsity: float | None = None,
    pattern: Pattern | None = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    measure_error: bool = True,
    blocksize: int = 128,
    percdamp: float = 0.01,
    progress: Progress | None = None,
    record: Mapping[str, Any] | None = None,
) -> FolderPruneResult:
    """Prune the Hugging Face model folder ``source`` in one shot, layer by layer, into the
    new folder ``output``; the arguments are :func:`~ticketlens.pruning.oneshot.
    oneshot_prune`'s (``calib_batches``: ``input_ids`` and ``attention_mask``; ``include``
    / ``exclude``: the anatomy's patterns). ``record``: more to write into ``oneshot.json``
    (e.g. how the calibration data was drawn). Gives the same masks and weights as
    ``oneshot_prune`` on the whole model (tested)."""
    from ticketlens.core.io import write_json_atomic
    from ticketlens.models.shards import FolderWeights, ShardWriter, build_trunk, read_config

    sparsity = checked_request(method, sparsity, pattern)
    need_data = method != "magnitude" or measure_error
    if need_data and not calib_batches:
        raise ConfigError(f"one-shot {method} needs calibration batches")
    if Path(output).resolve() == Path(source).resolve():
        raise ConfigError(f"{output}: the output folder must not be the model's own")
    if Path(output).exists() and (not Path(output).is_dir() or any(Path(output).iterdir())):
        raise ConfigError(f"{output}: exists and is not an empty folder (an interrupted "
                          "prune leaves a partial one: delete it, or choose another -o)")
    t_start = time.perf_counter()
    config = read_config(source)
    weights = FolderWeights(source)
    plan = _plan(config, weights, include, exclude, pattern)
    writer = ShardWriter(output, len(plan.all_layers) + 1, source)
    inside = {n for names in plan.all_layers.values() for n in names}
    writer.write(weights.read([n for n in weights.names if n not in inside]))
    cal = _Calibration()
    trunk, layers, layer_cls = build_trunk(config, weights, plan.prefix)
    kinds = list(getattr(config, "layer_types", None) or [])  # per layer: full / sliding
    with torch.no_grad():
        if need_data:
            cal.capture_kinds(trunk, layers[0], calib_batches, kinds)
        del trunk, layers
        job = _Job(method, sparsity, pattern, measure_error, blocksize, percdamp)
        for done, (i, names) in enumerate(plan.all_layers.items(), start=1):
            layer_state = weights.read(names)
            job.layer(config, layer_cls, i, layer_state, plan, cal if need_data else None)
            writer.write(layer_state)
            del layer_state
            if progress is not None:
                progress(done, None)
    writer.close()
    job.save_masks(Path(output) / MASKS_FILE, source)
    peak, kind = peak_memory(torch.device("cpu"))
    result = FolderPruneResult(method, float(sparsity), str(pattern) if pattern else
                               "unstructured", str(source), str(output), len(plan.all_layers),
                               cal.tokens, tuple(job.stats), time.perf_counter() - t_start,
                               peak, kind)
    write_json_atomic(Path(output) / RECORD_FILE, {**result.to_dict(), **dict(record or {})})
    return result


class _Job:
    """The settings of one call, and the masks (bit-packed) and figures gathered so far."""

    def __init__(self, method: str, sparsity: float, pattern: Pattern | None,
                 measure_error: bool, blocksize: int, percdamp: float):
        self.method, self.sparsity, self.pattern = method, sparsity, pattern
        self.measure_error, self.blocksize, self.percdamp = measure_error, blocksize, percdamp
        self.packed: dict[str, Any] = {}
        self.shapes: dict[str, list[int]] = {}
        self.stats: list[LayerStat] = []

    def layer(self, config: Any, layer_cls: type, index: int,
              state: dict[str, torch.Tensor], plan: _Plan, cal: _Calibration | None) -> None:
        """Layer ``index`` pruned in ``state`` (its full-name tensors, replaced in place by
        the pruned ones); ``cal`` advanced through the pruned layer."""
        from ticketlens.core.masks import pack
        from ticketlens.models.shards import build_layer

        t0 = time.perf_counter()
        base = f"{plan.prefix}{index}."
        layer = build_layer(config, layer_cls, index,
                            {n[len(base):]: t for n, t in state.items()})
        if cal is not None:  # the mask of this layer's attention kind (full, sliding)
            cal.select((getattr(config, "layer_types", None) or [None] * (index + 1))[index])
        order = {base + k: j for j, (k, _) in enumerate(layer.named_parameters())}
        names = sorted(plan.names.get(index, []), key=order.__getitem__)  # the model's order
        modules = {n: layer.get_submodule(n[len(base):].rsplit(".", 1)[0]) for n in names}
        gram = self.method == "sparsegpt" or self.measure_error
        inputs: dict[str, InputStats] = {}
        if cal is not None and names:
            inputs = {n: InputStats(state[n].shape[1], gram, torch.device("cpu"))
                      for n in names}
            collect_inputs(layer, modules, inputs, cal.items, _layer_forward)
        for n in names:
            t1 = time.perf_counter()
            p, st = modules[n].weight, inputs.get(n)
            new, keep, err, rel = prune_matrix(p, plan.layouts[n], st, self.method,
                                               self.sparsity, self.pattern,
                                               blocksize=self.blocksize, percdamp=self.percdamp)
            p.data = new  # the layer's output for the next layer is the pruned one's
            state[n] = new
            self.packed[n], self.shapes[n] = pack(keep), list(keep.shape)
            self.stats.append(LayerStat(n, index, plan.roles[n], float(keep.float().mean()),
                                        st.tokens if st is not None else 0, err, rel,
                                        time.perf_counter() - t1 + (t1 - t0) / len(names)))
        del inputs
        if cal is not None and index < max(plan.all_layers):
            cal.advance(layer)

    def save_masks(self, path: Path, source: str | Path) -> None:
        from ticketlens.core.masks import save_packed_masks

        save_packed_masks(path, self.packed, self.shapes, source=str(source),
                          method=self.method)


# ---------------------------------------------------------------------------- calibration
def random_calibration(vocab_size: int, samples: int, tokens: int, seed: int,
                       batch_size: int = 8) -> tuple[list[Batch], dict[str, Any]]:
    """``samples`` sequences of ``tokens`` token ids drawn uniformly from the vocabulary
    (seeded), in batches: enough to time a model or measure its memory, not to prune a
    trained one well. Returns the batches and their record."""
    _check_sizes(samples, tokens, batch_size)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab_size, (samples, tokens), generator=g)
    return _batched(ids, batch_size), {
        "kind": "random", "samples": samples, "tokens": tokens, "seed": seed,
        "how": "torch.randint(0, vocab_size, (samples, tokens), generator=torch.Generator()"
               ".manual_seed(seed))"}


def text_calibration(ids: Sequence[int], samples: int, tokens: int, seed: int,
                     batch_size: int = 8) -> tuple[list[Batch], dict[str, Any]]:
    """``samples`` windows of ``tokens`` consecutive ids of a tokenized text, at seeded
    random offsets (the references' calibration: random 2048-token windows of C4 documents),
    in batches. Returns the batches and their record (the offsets included)."""
    _check_sizes(samples, tokens, batch_size)
    if len(ids) < tokens:
        raise ConfigError(f"the calibration text has {len(ids)} tokens, fewer than the "
                          f"{tokens} of one window")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - tokens + 1, (samples,), generator=g).tolist()
    all_ids = torch.tensor(list(ids), dtype=torch.long)
    windows = torch.stack([all_ids[s:s + tokens] for s in starts])
    return _batched(windows, batch_size), {
        "kind": "text", "samples": samples, "tokens": tokens, "seed": seed,
        "text_tokens": len(ids), "offsets": starts,
        "how": "torch.randint(0, text_tokens - tokens + 1, (samples,), generator="
               "torch.Generator().manual_seed(seed))"}


def _check_sizes(samples: int, tokens: int, batch_size: int) -> None:
    for what, n in (("samples", samples), ("tokens", tokens), ("batch size", batch_size)):
        if n < 1:
            raise ConfigError(f"calibration {what} must be >= 1, got {n}")


def _batched(ids: torch.Tensor, batch_size: int) -> list[Batch]:
    return [{"input_ids": ids[i:i + batch_size],
             "attention_mask": torch.ones_like(ids[i:i + batch_size])}
            for i in range(0, ids.shape[0], batch_size)]
