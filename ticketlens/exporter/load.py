"""Loading an export folder back: :func:`load_pruned`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ticketlens.core.errors import ModelError, RunFormatError
from ticketlens.exporter.record import read_meta


def load_pruned(path: str | os.PathLike[str]) -> Any:
    """The model in a folder written by ``ticketlens export`` (sliced or not), in eval mode:
    built from its ``config.json``, shrunk to the stored per-layer head and neuron counts,
    loaded from its safetensors (no pickle, no remote code)."""
    import torch
    import transformers as tf
    from safetensors.torch import load_file

    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.load import model_class
    from ticketlens.models.slice_plan import LayerUnits
    from ticketlens.models.slicing import shrink_to_counts

    folder = Path(path)
    meta = read_meta(folder)
    try:
        cfg = tf.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: unreadable config.json ({exc})") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(meta.get("objective", "classification")).from_config(cfg)
    layers = [LayerUnits.from_dict(d) for d in meta.get("layers") or ()]
    if layers:
        shrink_to_counts(model, anatomy_of(model), layers)
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise RunFormatError(f"{folder}: no model*.safetensors")
    state: dict[str, Any] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except Exception as exc:  # safetensors' own error types
            raise RunFormatError(f"{f}: corrupt weights file ({exc})") from None
    _load_state(model, state, folder)
    return model.eval()


def _load_state(model, state: dict[str, Any], folder: Path) -> None:
    """Load strictly; parameters tied to a loaded one (LM heads) may be absent."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not fit
        raise RunFormatError(f"{folder}: weights do not fit the model "
                             f"({str(exc).splitlines()[-1].strip()})") from None
    by_id: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), set()).add(name)
    params = dict(model.named_parameters(remove_duplicate=False))
    untied = [m for m in missing if m in params and not (by_id[id(params[m])] & state.keys())]
    untied += [m for m in missing if m not in params and m not in _buffers(model)]
    if untied or unexpected:
        raise RunFormatError(f"{folder}: weights do not fit the model (missing "
                             f"{sorted(untied)[:3]}, unexpected {sorted(unexpected)[:3]})")


def _buffers(model) -> set[str]:
    return {n for n, _ in model.named_buffers()}
