"""A Hugging Face model folder read and written one decoder layer at a time.

For models bigger than the memory left beside them (``pruning.stream``, ``compress.stream``):
the weights stay in the folder's safetensors files (``model.safetensors``, or shards listed
in ``model.safetensors.index.json``) and are read tensor by tensor. A file is opened for
one group of reads and closed again, so its pages do not stay mapped into the process.

- :class:`FolderWeights`: the names, shapes and dtypes of a folder's tensors (headers only),
  and the tensors of one group read on request;
- :func:`layer_prefix`: ``model.layers.`` for a Llama-style checkpoint, found from the names;
- :func:`build_trunk`: the model with one decoder layer, the weights outside the layers loaded
  (embeddings, final norm), to run the part before layer 0 on real inputs;
- :func:`build_layer`: decoder layer ``i`` built on the meta device and given its tensors
  (no random initialisation, no second copy);
- :class:`ShardWriter`: writes a new folder group by group (one safetensors shard each), then
  the index ``from_pretrained`` reads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ticketlens.core.errors import ModelError, first_line

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
_LAYER = re.compile(r"^(.*?(?:^|\.)(?:layers|h|layer))\.(\d+)\.")


def _header(path: Path) -> dict[str, Any]:
    """A safetensors file's header (JSON after an 8-byte little-endian length)."""
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            return json.loads(fh.read(n))
    except (OSError, ValueError, struct.error) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({first_line(exc)})") \
            from None


class FolderWeights:
    """The tensors of a model folder, by name, read lazily (headers only on opening)."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        if (self.folder / INDEX).is_file():
            try:
                weight_map = json.loads((self.folder / INDEX).read_text())["weight_map"]
                files = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ModelError(f"{self.folder / INDEX}: not a readable index "
                                 f"({type(exc).__name__}: {first_line(exc)})") from None
        elif (self.folder / SINGLE).is_file():
            files = [SINGLE]
        else:
            raise ModelError(f"{self.folder}: no {SINGLE} or {INDEX} (a Hugging Face model "
                             "folder with safetensors weights is needed)")
        self.file_of: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.dtypes: dict[str, str] = {}
        for f in files:
            for name, info in _header(self.folder / f).items():
                if name == "__metadata__":
                    continue
                self.file_of[name] = f
                self.shapes[name] = tuple(info["shape"])
                self.dtypes[name] = info["dtype"]

    @property
    def names(self) -> list[str]:
        return list(self.file_of)

    def read(self, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """The named tensors (new CPU tensors, as stored), each file opened once and closed."""
        from safetensors import safe_open

        by_file: dict[str, list[str]] = {}
        for n in names:
            if n not in self.file_of:
                raise ModelError(f"{self.folder}: no tensor {n!r}")
            by_file.setdefault(self.file_of[n], []).append(n)
        out: dict[str, torch.Tensor] = {}
        for f, group in by_file.items():
            with safe_open(str(self.folder / f), framework="pt") as fh:
                for n in group:
                    out[n] = fh.get_tensor(n)
        return out


def layer_prefix(names: Sequence[str]) -> str:
    """The prefix of the decoder layers' tensors (``model.layers.``), from the names."""
    found = {m.group(1) for n in names if (m := _LAYER.match(n))}
    if len(found) != 1:
        raise ModelError("cannot tell the decoder layers from the tensor names (expected one "
                         f"'...layers.N.' family, found {sorted(found) or 'none'})")
    return found.pop() + "."


def layer_names(names: Sequence[str], prefix: str) -> dict[int, list[str]]:
    """Tensor names by layer index."""
    out: dict[int, list[str]] = {}
    for n in names:
        if n.startswith(prefix):
            out.setdefault(int(n[len(prefix):].split(".", 1)[0]), []).append(n)
    return dict(sorted(out.items()))


def read_config(folder: str | os.PathLike[str]) -> Any:
    import transformers as tf

    if not Path(folder).is_dir():
        raise ModelError(f"{folder}: no such folder")
    try:
        return tf.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: no readable config.json ({first_line(exc)})") from None


def _layers_module(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)
             and len(m) == 1]
    if len(lists) != 1:
        raise ModelError("streaming needs a model with one list of decoder layers")
    return lists[0]


def build_trunk(config: Any, weights: FolderWeights, prefix: str
                ) -> tuple[torch.nn.Module, torch.nn.Module, type]:
    """``(trunk, its layer list, the decoder layer class)``: the base model (no LM head)
    with one decoder layer, its tensors outside the layers read from ``weights``. Layer 0
    is a placeholder: a forward pre-hook on it sees the hidden states and the arguments
    every decoder layer receives (mask, positions), and must stop the forward there."""
    import copy

    import transformers as tf

    cfg = copy.deepcopy(config)
    cfg.num_hidden_layers = 1
    with torch.device("meta"):
        trunk = tf.AutoModel.from_config(cfg)
    list_name, layers = _layers_module(trunk)
    base = prefix[: -len(list_name) - 1]  # "model.layers." -> "model."
    wanted = {k: base + k for k in trunk.state_dict() if not k.startswith(list_name + ".")}
    missing = [v for v in wanted.values() if v not in weights.file_of]
    if missing:
        raise ModelError(f"{weights.folder}: no tensor {missing[0]!r}")
    state = weights.read(wanted.values())
    layer_cls = type(layers[0])
    layers[0] = torch.nn.Identity()  # never run: the caller stops at its input
    trunk.load_state_dict({k: state[v] for k, v in wanted.items()}, strict=False, assign=True)
    _materialize_buffers(trunk, config)
    # the layers are built from ``config``: the attention kernel the trunk's mask is for
    config._attn_implementation = trunk.config._attn_implementation
    return trunk.eval(), layers, layer_cls


def _materialize_buffers(module: torch.nn.Module, config: Any) -> None:
    """Buffers left on the meta device (not in the checkpoint: rotary frequencies) rebuilt
    by constructing their module again on the CPU."""
    for name, sub in list(module.named_modules()):
        if any(b.is_meta for b in sub.buffers(recurse=False)):
            if any(p.is_meta for p in sub.parameters(recurse=False)):
                raise ModelError(f"{name}: weights missing from the checkpoint")
            try:
                fresh = type(sub)(config=config)
            except TypeError as exc:
                raise ModelError(f"{name}: cannot rebuild {type(sub).__name__} outside the "
                                 f"model ({first_line(exc)})") from None
            parent, _, attr = name.rpartition(".")
            setattr(module.get_submodule(parent) if parent else module, attr, fresh)
    leftover = [n for n, t in [*module.named_parameters(), *module.named_buffers()]
                if t.is_meta]
    if leftover:
        raise ModelError(f"{leftover[0]}: not in the checkpoint")


def build_layer(config: Any, layer_cls: type, index: int, state: Mapping[str, torch.Tensor]
                ) -> torch.nn.Module:
    """Decoder layer ``index`` (its class as the trunk's) holding ``state`` (names relative
    to the layer; the tensors are used as they are, not copied)."""
    with torch.device("meta"):
        layer = layer_cls(config, index)
    try:
        layer.load_state_dict(dict(state), strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelError(f"layer {index}: {first_line(exc)}") from None
    _materialize_buffers(layer, config)
    return layer.eval()


# the source's weights in any format: never copied beside the new shards (a dense
# pytorch_model.bin next to the pruned safetensors would be loaded with use_safetensors=False)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf",
                    ".onnx", ".ot")


def _is_weights_file(name: str) -> bool:
    return name.endswith(_WEIGHT_SUFFIXES) or name.endswith(".index.json")


class ShardWriter:
    """A model folder written one group of tensors at a time (``model-K-of-N.safetensors``),
    then ``model.safetensors.index.json``; the other files of ``source`` (config,
    tokenizer; not its weights in any format, nor their indexes) are copied."""

    def __init__(self, folder: str | os.PathLike[str], shards: int,
                 source: str | os.PathLike[str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shards, self.done = shards, 0
        self.weight_map: dict[str, str] = {}
        self.total = 0
        if source is not None:
            for f in Path(source).iterdir():
                if f.is_file() and not _is_weights_file(f.name):
                    shutil.copyfile(f, self.folder / f.name)

    def write(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """The next shard (tensors as they are: dtype and shape kept)."""
        from safetensors.torch import save

        from ticketlens.core.io import write_bytes_atomic

        if self.done >= self.shards:
            raise ValueError(f"more than the {self.shards} shards announced")
        self.done += 1
        name = f"model-{self.done:05d}-of-{self.shards:05d}.safetensors"
        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        write_bytes_atomic(self.folder / name, save(data, {"format": "pt"}))
        self.weight_map.update({k: name for k in tensors})
        self.total += sum(v.numel() * v.element_size() for v in data.values())

    def close(self) -> None:
        """The index (after every shard was written)."""
        from ticketlens.core.io import write_json_atomic

        if self.done != self.shards:
            raise ValueError(f"{self.done} of {self.shards} shards written")
        write_json_atomic(self.folder / INDEX, {
            "metadata": {"total_size": self.total},
            "weight_map": dict(sorted(self.weight_map.items()))})

