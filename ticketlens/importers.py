"""Masks made by other tools, written as ordinary run directories (masks only, no weights).

- ``bert-experiments``: structured masks released by Prasanna et al. 2020: per
  ``TASK/seed_S/`` a ``head_mask.npy`` (layers, heads) and an ``mlp_mask.npy`` (layers,) of
  BERT-base (or BERT-large), 1 = kept. Stored as structured masks (heads and FFN blocks).
- ``torch-prune``: a ``torch.nn.utils.prune`` state dict (``*.weight_mask`` entries), read with
  ``torch.load(weights_only=True)``.
- ``safetensors`` / ``npz``: boolean (or 0/1) masks keyed by parameter name.

Arrays are read with ``allow_pickle=False``; nothing is unpickled. Weight-level formats need
``--model`` (a preset, folder or cached id) to know the architecture; tensors the file does not
mention are taken as unpruned.
"""

from __future__ import annotations

import datetime as dt
import pickle
import re
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from ticketlens.core import masks as M
from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import DataError, RunFormatError, first_line
from ticketlens.core.record import FORMAT, FORMAT_VERSION, Manifest
from ticketlens.core.run import RunWriter
from ticketlens.core.structure import expand_structured
from ticketlens.core.version import __version__
from ticketlens.models.anatomy import build_anatomy

FORMATS = ("bert-experiments", "torch-prune", "safetensors", "npz")
# (layers, heads) -> (hidden, intermediate, HF id) for the released BERT sizes
BERT_SIZES = {(12, 12): (768, 3072, "bert-base-uncased"),
              (24, 16): (1024, 4096, "bert-large-uncased")}


def bert_anatomy(layers: int, heads: int) -> tuple[Anatomy, str]:
    """BERT's anatomy from its sizes alone (no model download)."""
    if (layers, heads) not in BERT_SIZES:
        raise DataError(f"head_mask of shape ({layers}, {heads}) is not BERT-base (12, 12) or "
                        "BERT-large (24, 16)")
    hidden, inter, name = BERT_SIZES[(layers, heads)]
    cfg = SimpleNamespace(model_type="bert", num_hidden_layers=layers,
                          num_attention_heads=heads, hidden_size=hidden,
                          intermediate_size=inter)
    named = []
    for layer in range(layers):
        p = f"bert.encoder.layer.{layer}."
        named += [(p + "attention.self.query.weight", (hidden, hidden)),
                  (p + "attention.self.key.weight", (hidden, hidden)),
                  (p + "attention.self.value.weight", (hidden, hidden)),
                  (p + "attention.output.dense.weight", (hidden, hidden)),
                  (p + "intermediate.dense.weight", (inter, hidden)),
                  (p + "output.dense.weight", (hidden, inter))]
    return build_anatomy(cfg, named), name


def _load_npy(path: Path) -> np.ndarray:
    try:  # opened here: np.load leaves a file it opened open when it is a corrupt zip
        with open(path, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    except Exception as exc:  # a bad header raises ValueError, SyntaxError, TokenError, ...
        raise DataError(f"{path}: not a readable NumPy array ({first_line(exc)})") from None


_NOT_ZERO_ONE = "a mask must hold only 0 and 1 (or booleans)"


def _as_bool(arr: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
        raise DataError(f"{where}: {_NOT_ZERO_ONE}")
    return arr.astype(bool)


def _tensor_as_bool(t: torch.Tensor, where: str) -> np.ndarray:
    """A mask tensor of any dtype (bfloat16 included) or layout as a numpy bool array."""
    try:
        t = t.detach().to_dense().cpu()
        zero_one = bool(((t == 0) | (t == 1)).all())
    except (TypeError, RuntimeError, NotImplementedError) as exc:
        raise DataError(f"{where}: not a dense numeric tensor ({first_line(exc)})") from None
    if not zero_one:
        raise DataError(f"{where}: {_NOT_ZERO_ONE}")
    return (t != 0).numpy()


# ----------------------------------------------------------------------------- readers
def find_bert_experiments(paths: list[str]) -> list[tuple[str, int, Path]]:
    """(task, seed, folder) of every ``TASK/seed_S`` folder at or below ``paths``."""
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
        candidates = [p] if (p / "head_mask.npy").exists() else sorted(
            f.parent for f in p.rglob("head_mask.npy"))
        if not candidates:
            raise DataError(f"{p}: no head_mask.npy found (expected TASK/seed_S/ folders)")
        for c in candidates:
            m = re.fullmatch(r"seed_(\d+)", c.name)
            if not m:
                raise DataError(f"{c}: expected a folder named seed_<N>")
            found.append((c.parent.name, int(m.group(1)), c))
    return found


def read_bert_experiments(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    heads = _as_bool(_load_npy(folder / "head_mask.npy"), str(folder / "head_mask.npy"))
    mlp_path = folder / "mlp_mask.npy"
    mlp = _as_bool(_load_npy(mlp_path), str(mlp_path)) if mlp_path.exists() else \
        np.ones(heads.shape[:1], dtype=bool)
    if heads.ndim != 2 or mlp.shape != (heads.shape[0],):
        raise DataError(f"{folder}: head_mask must be (layers, heads) and mlp_mask (layers,); "
                        f"got {heads.shape} and {mlp.shape}")
    return heads, mlp


def read_weight_masks(path: Path, fmt: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if fmt == "npz":
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                return {k: _as_bool(z[k], f"{path}: {k!r}") for k in z.files}
        if fmt == "safetensors":
            from safetensors.numpy import load_file

            return {k: _as_bool(v, f"{path}: {k!r}") for k, v in load_file(str(path)).items()}
        with warnings.catch_warnings():  # a second line on stderr about pickle protocols
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except DataError:
        raise
    except pickle.UnpicklingError:  # torch's message is a paragraph on loading it unsafely
        raise DataError(f"{path}: not a readable {fmt} mask file (torch.load with "
                        "weights_only=True refused it: it is corrupt or holds Python objects "
                        "other than tensors and containers)") from None
    except Exception as exc:  # each library raises its own types for a malformed file
        raise DataError(f"{path}: not a readable {fmt} mask file ({first_line(exc)})") \
            from None
    if not isinstance(state, dict):
        raise DataError(f"{path}: expected a state dict")
    out = {k[: -len("_mask")]: _tensor_as_bool(v, f"{path}: {k!r}") for k, v in state.items()
           if isinstance(k, str) and k.endswith("_mask") and isinstance(v, torch.Tensor)}
    if not out:
        raise DataError(f"{path}: no '*_mask' entries (not a torch.nn.utils.prune state dict)")
    return out


def model_anatomy(model: str) -> tuple[Anatomy, dict[str, Any]]:
    """Anatomy of a preset, folder or cached id, built on the meta device (no weights)."""
    from ticketlens.models.load import PRESETS, model_class, preset_config

    if model in PRESETS:
        from ticketlens.data.tokenizer import builtin_tokenizer

        tok = builtin_tokenizer()
        cfg = preset_config(model, tok.vocab_size, 2, tok.pad_id)
    else:
        import transformers as tf

        try:
            cfg = tf.AutoConfig.from_pretrained(model, local_files_only=True)
        except OSError:
            raise DataError(f"--model {model!r}: not a preset, local folder or cached model") \
                from None
    with torch.device("meta"):
        net = model_class("classification").from_config(cfg)
    named = [(n, tuple(p.shape)) for n, p in net.named_parameters()]
    return build_anatomy(net.config, named), net.config.to_dict()


# ----------------------------------------------------------------------------- writing
def write_imported_run(out: Path, *, anatomy: Anatomy, model: dict[str, Any], task: str,
                       seed: int | None, source: dict[str, Any],
                       weight_masks: M.Masks | None = None,
                       structured: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: exists and is not empty; choose another --out")
    writer = RunWriter(out)
    if structured is not None:
        heads, ffn = (np.ascontiguousarray(x, dtype=bool) for x in structured)
        rel0 = writer.mask(0, {"heads": np.ones_like(heads), "ffn": np.ones_like(ffn)})
        rel1 = writer.mask(1, {"heads": heads, "ffn": ffn})
        weight_masks = expand_structured(anatomy, heads, ffn)
    else:
        assert weight_masks is not None
        rel0 = writer.mask(0, M.ones_like(weight_masks))
        rel1 = writer.mask(1, weight_masks)
    rounds = [
        {"round": 0, "sparsity": 0.0, "sparsity_per_tensor": {n: 0.0 for n in anatomy.names},
         "metrics": {}, "steps": 0, "wall_time_s": 0.0, "mask": rel0},
        {"round": 1, "sparsity": M.sparsity(weight_masks),
         "sparsity_per_tensor": M.sparsity_per_tensor(weight_masks), "metrics": {},
         "steps": 0, "wall_time_s": 0.0, "mask": rel1},
    ]
    manifest = Manifest.from_dict({
        "format": FORMAT, "format_version": FORMAT_VERSION, "ticketlens_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "status": "complete", "seed": seed,
        "mask_kind": "structured" if structured is not None else "weights",
        "model": {**model, "source": "import", "family": anatomy.family,
                  "num_prunable": anatomy.num_prunable},
        "anatomy": anatomy.to_dict(),
        "task": {"name": task, "source": "import", "metric": None},
        "import": source, "rounds": rounds, "controls": {}, "weights": {},
        "ticket_round": 1, "verdict": None,
    })
    writer.manifest(manifest)
    return out


def import_masks(fmt: str, paths: list[str], out: str | Path, *, model: str = "",
                 task: str = "", seed: int | None = None) -> list[Path]:
    """Import ``paths`` of format ``fmt`` into run directories; returns their paths.

    ``bert-experiments`` writes one run per ``TASK/seed_S`` under ``out``; the other formats
    one run per file (``out`` itself for a single file)."""
    out = Path(out)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r} (formats: {', '.join(FORMATS)})")
    written = []
    if fmt == "bert-experiments":
        for t, s, folder in find_bert_experiments(paths):
            heads, mlp = read_bert_experiments(folder)
            anatomy, name = bert_anatomy(*heads.shape)
            written.append(write_imported_run(
                out / f"{t}-s{s}", anatomy=anatomy, model={"name": name, "config": {}},
                task=t, seed=s, source={"from": fmt, "path": str(folder.resolve())},
                structured=(heads, mlp)))
        return written
    if not model:
        raise DataError(f"--from {fmt} needs --model (a preset, model folder or cached id) "
                        "to know the architecture")
    anatomy, config = model_anatomy(model)
    for p in map(Path, paths):
        raw = read_weight_masks(p, fmt)
        unknown = [k for k in raw if k not in anatomy.shapes]
        if unknown:
            raise DataError(f"{p}: {unknown[0]!r} is not a prunable weight of {model}")
        masks = {}
        for name, shape in anatomy.shapes.items():
            if name in raw:
                if tuple(raw[name].shape) != tuple(shape):
                    raise RunFormatError(f"{p}: mask is for another model: {name} has shape "
                                         f"{tuple(raw[name].shape)}, {model}'s is {shape}")
                masks[name] = np.ascontiguousarray(raw[name], dtype=bool)
            else:
                masks[name] = np.ones(shape, dtype=bool)
        target = out if len(paths) == 1 else out / p.stem
        written.append(write_imported_run(
            target, anatomy=anatomy, model={"name": model, "config": config},
            task=task or p.stem, seed=seed, source={"from": fmt, "path": str(p.resolve())},
            weight_masks=masks))
    return written
