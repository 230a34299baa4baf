"""Writing a run's ticket as an HF model folder: :func:`export_run`."""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.io import write_json_atomic
from ticketlens.core.run import Run, open_run
from ticketlens.exporter.folder import check_target, move_into_place, temp_folder
from ticketlens.exporter.record import META, ExportResult, meta_record
from ticketlens.exporter.tokenizer import save_tokenizer

# a forward pass at export compares the written model with the masked one
CHECK_TOLERANCE = 1e-4


def open_masked(run: Run | str | os.PathLike[str], out: str | os.PathLike[str],
                round: int | None, overwrite: bool) -> tuple[Run, Path, int, Any, Any]:
    """What every export format starts from: the run, the checked target folder, the round,
    its masks and the masked model."""
    r = run if isinstance(run, Run) else open_run(run)
    out = Path(out)
    check_target(out, overwrite)
    index = _round(r, round)
    masks = r.mask(index)
    return r, out, index, masks, _masked_model(r, index, masks)


def export_run(run: Run | str | os.PathLike[str], out: str | os.PathLike[str], *,
               round: int | None = None, slice: bool = True,
               overwrite: bool = False) -> ExportResult:
    """Write ``run``'s ticket (or round ``round``) to ``out`` as an HF model folder, sliced
    where whole heads or neurons are removable unless ``slice=False``."""
    import torch

    from ticketlens.models.anatomy import anatomy_of

    r, out, index, masks, model = open_masked(run, out, round, overwrite)
    anatomy = anatomy_of(model)  # every attention and FFN matrix: locates the modules
    dense = _sizes(model)

    from ticketlens.models.slice_plan import plan_layer
    from ticketlens.models.slicing import apply_plan, uniform_config

    plans = [plan_layer(model, anatomy, masks, layer) for layer in range(anatomy.num_layers)]
    removed = sum(p.removed_heads + p.removed_neurons for p in plans)
    sliced = bool(slice) and removed > 0
    reference = copy.deepcopy(model) if sliced else None
    stock = True
    if sliced:
        apply_plan(model, anatomy, plans)
        stock = uniform_config(model.config, anatomy, [p.units for p in plans])
    diff = _max_diff(reference, model) if reference is not None else 0.0
    if diff > CHECK_TOLERANCE:  # a bug, not a user error: never ship a wrong model
        raise RuntimeError(f"the sliced model differs from the masked one by {diff:.3g}")
    small = _sizes(model)

    tmp = temp_folder(out)
    try:
        with torch.no_grad(), _no_progress_bars():
            model.save_pretrained(tmp)
        has_tok = save_tokenizer(r, model.config, tmp)
        file_bytes = sum(p.stat().st_size for p in tmp.glob("*.safetensors"))
        H, N = anatomy.num_heads, anatomy.intermediate
        heads_kept = sum(H - p.removed_heads for p in plans) if slice else \
            anatomy.num_layers * H
        neurons_kept = sum(N - p.removed_neurons for p in plans) if slice else \
            anatomy.num_layers * N
        result = ExportResult(
            path=str(out), run=str(r.path), round=index, sparsity=r.manifest.round(index).sparsity,
            sliced=sliced, stock_loadable=stock, heads_kept=heads_kept,
            heads_total=anatomy.num_layers * H, neurons_kept=neurons_kept,
            neurons_total=anatomy.num_layers * N, parameters=small[0],
            dense_parameters=dense[0], parameter_bytes=small[1], dense_parameter_bytes=dense[1],
            file_bytes=file_bytes, max_abs_diff=diff, tokenizer=has_tok)
        write_json_atomic(tmp / META, meta_record(r, result, plans if sliced else None))
        move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off for one call (save_pretrained draws one), then as
    they were."""
    from transformers.utils import logging

    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            logging.enable_progress_bar()


def _round(run: Run, round_index: int | None) -> int:
    if not run.manifest.weights:
        raise ConfigError(f"{run.path}: has no trained weights (imported masks carry none); "
                          "export needs a run made by `ticketlens find`")
    try:
        return run.round_index(round_index)
    except RunFormatError as exc:
        raise ConfigError(str(exc)) from None


def _masked_model(run: Run, index: int, masks) -> Any:
    """The run's model with round ``index``'s trained weights times its mask (eval mode)."""
    import torch
    from safetensors.torch import load_file

    from ticketlens.models.load import model_from_run
    from ticketlens.pruning.masking import MaskEnforcer

    which = "ticket" if index == run.ticket_round else "dense" if index == 0 else None
    model = model_from_run(run, which or "ticket")
    if which is None:
        path = run.paths.weights(index)
        if not path.is_file():
            raise ConfigError(f"{run.path}: round {index}'s trained weights were not kept "
                              f"(kept: the dense model and the ticket, round {run.ticket_round})")
        _, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
        if unexpected:
            raise RunFormatError(f"{path}: weights do not fit the model")
    with torch.no_grad():
        MaskEnforcer(model, masks).apply_to_weights()
    return model


def _sizes(model) -> tuple[int, int]:
    """(parameters, bytes) counting tied parameters once."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params), sum(p.numel() * p.element_size() for p in params)


def _max_diff(a, b) -> float:
    """Largest output difference of two models on a fixed random batch (2 x 16 tokens)."""
    import torch

    cfg = a.config
    g = torch.Generator().manual_seed(0)
    n = min(16, int(getattr(cfg, "max_position_embeddings", 0) or
                    getattr(cfg, "n_positions", 16) or 16))
    ids = torch.randint(0, cfg.vocab_size, (2, n), generator=g)
    with torch.no_grad():
        return float((a(input_ids=ids).logits - b(input_ids=ids).logits).abs().max())
