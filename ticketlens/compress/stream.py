"""``compress`` of a model folder too big to hold twice: one tensor at a time.

:func:`compress_folder` writes the variant file of :mod:`ticketlens.compress.store` that
``compress`` writes for a model held in memory (``engine.stored_tensors`` + ``write_variant``),
byte for byte (tested), but reads the folder's safetensors one tensor at a time, quantizes
it, keeps only its encoded bytes (int4: half a byte per kept weight, its mask bit and the
scales) and drops it. The prunable matrices are the model's anatomy (every attention and FFN
matrix of every layer); with a mask file (``masks.safetensors``, as
:func:`ticketlens.pruning.stream.oneshot_prune_folder` writes beside the pruned weights)
they are stored as mask bits + kept values; every quantized matrix is checked to keep its
zero (pruned) weights exactly zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketlens.compress.config import EMB_SCHEMES, GROUPS
from ticketlens.core.errors import ConfigError

__all__ = ["FolderCompressResult", "check_request", "compress_folder"]

WEIGHT_ONLY = ("fp32", "fp16", "int8", "int4")


@dataclass(frozen=True)
class FolderCompressResult:
    """The variant file written: its size against the folder's tensors stored as float32
    (``dense_fp32_bytes``, the data bytes), for all tensors and for the prunable matrices
    alone; ``peak_memory_bytes`` the process's peak resident size (``ru_maxrss``)."""

    source: str
    path: str
    scheme: str
    group: int
    embeddings: str | None
    masked: bool
    bytes: int
    dense_fp32_bytes: int
    prunable_bytes: int
    prunable_fp32_bytes: int
    tensors: int
    seconds: float
    peak_memory_bytes: int

    @property
    def ratio(self) -> float:
        return self.dense_fp32_bytes / self.bytes

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "ratio": round(self.ratio, 4),
                "prunable_ratio": round(self.prunable_fp32_bytes / self.prunable_bytes, 4)}


def _embedding_names(config: Any, names: list[str]) -> list[str]:
    """The folder's tensors that are ``nn.Embedding`` weights (the model built on the meta
    device to see its modules; nothing is allocated)."""
    import transformers as tf

    from ticketlens.compress.engine import embedding_names

    with torch.device("meta"):
        base = tf.AutoModel.from_config(config)
    found = []
    for n in embedding_names(base):
        hits = [f for f in names if f == n or f.endswith("." + n)]
        found += hits[:1]
    return found


def check_request(scheme: str, group: int, embeddings: str | None) -> None:
    if scheme not in WEIGHT_ONLY:
        raise ConfigError(f"a model folder is compressed with a weight-only scheme "
                          f"({', '.join(WEIGHT_ONLY)}), not {scheme!r}")
    if group not in GROUPS:
        raise ConfigError(f"int4 group size {group} must be one of {GROUPS}")
    if embeddings is not None and embeddings not in EMB_SCHEMES:
        raise ConfigError(f"unknown embedding scheme {embeddings!r} (choose from "
                          f"{', '.join(EMB_SCHEMES)})")


def compress_folder(source: str | Path, path: str | Path, scheme: str = "int4",
                    group: int = 64, *, masks: str | Path | None = "auto",
                    embeddings: str | None = None, emb_group: int = 0,
                    include: tuple[str, ...] = (), exclude: tuple[str, ...] = (),
                    ) -> FolderCompressResult:
    """Write the Hugging Face model folder ``source`` as one ``scheme`` variant file
    ``path`` (int4: one scale per ``group`` inputs). ``masks``: a mask file of the prunable
    matrices (``"auto"``: ``source/masks.safetensors`` when it exists; ``None``: no mask,
    dense storage). ``embeddings``: also quantize the ``nn.Embedding`` matrices (``int8`` /
    ``int4``, one scale per row or per ``emb_group``)."""
    from ticketlens.compress.engine import stored_tensors
    from ticketlens.compress.quant import QTensor, check_zeros_kept, dequantize
    from ticketlens.compress.store import write_variant_from
    from ticketlens.core import masks as M
    from ticketlens.models.anatomy import build_anatomy
    from ticketlens.models.shards import FolderWeights, read_config
    from ticketlens.pruning.oneshot import peak_memory
    from ticketlens.pruning.stream import MASKS_FILE

    check_request(scheme, group, embeddings)
    t0 = time.perf_counter()
    source = Path(source)
    weights = FolderWeights(source)
    config = read_config(source)
    anatomy = build_anatomy(config, [(n, weights.shapes[n]) for n in weights.names],
                            include, exclude)
    prunable = list(anatomy.names)
    if masks == "auto":
        masks = source / MASKS_FILE if (source / MASKS_FILE).is_file() else None
    packed = None if masks is None else M.load_packed(masks, {n: weights.shapes[n]
                                                              for n in prunable})
    emb = {} if embeddings is None else {n: (int(embeddings[3:]), emb_group)
                                         for n in _embedding_names(config, weights.names)}

    def get(name: str) -> Any:
        t = weights.read([name])[name]
        mask = None if packed is None or name not in packed else {
            name: torch.from_numpy(M.unpack(packed[name], weights.shapes[name]))}
        stored = stored_tensors({name: t}, prunable, scheme, mask, group, {}, emb)[name]
        if isinstance(stored.value, QTensor):
            check_zeros_kept(t, dequantize(stored.value), name)
        return stored

    payload: dict[str, int] = {}
    size = write_variant_from(path, weights.names, get, meta={"variant": Path(path).stem},
                              payload=payload)
    fp32 = {n: 4 * int(torch.Size(s).numel()) for n, s in weights.shapes.items()}
    return FolderCompressResult(
        str(source), str(path), scheme, group, embeddings, packed is not None, size,
        sum(fp32.values()), sum(payload[n] for n in prunable), sum(fp32[n] for n in prunable),
        len(weights.names), time.perf_counter() - t0, peak_memory(torch.device("cpu"))[0])
