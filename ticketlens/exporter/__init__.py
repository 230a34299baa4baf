"""``ticketlens export``: a ticket as a Hugging Face model folder others can load.

::

    DIR/
      config.json, model.safetensors    save_pretrained of the masked (and sliced) model
      tokenizer.json, tokenizer_config.json   the run's tokenizer, for AutoTokenizer
      ticketlens.json                   run, round, sparsity, units kept per layer, sizes

The ticket round's trained weights times its mask are baked in. When whole heads or FFN
neurons are removable (:mod:`ticketlens.exporter.plan`) the model is also *sliced*: those
units leave the matrices, their constant contributions move into the output biases, and the
outputs stay those of the masked model (checked by a forward pass at export). A sliced
model loads with :func:`load_pruned`; stock ``from_pretrained`` loads it too when every
layer keeps the same counts and the config can say so (always for the FFN width; head counts
only for Llama-style configs, which carry ``head_dim``; BERT, DistilBERT and GPT-2 derive
the head size from hidden / heads). Otherwise ``config.json`` keeps the dense sizes, so a
stock load fails loudly on the shapes instead of loading wrong weights.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core.errors import ConfigError, ModelError, RunFormatError
from ticketlens.core.io import TMP_PREFIX, write_json_atomic
from ticketlens.core.result import Result
from ticketlens.core.run import Run, open_run

EXPORT_FORMAT = "ticketlens.exporter"
META = "ticketlens.json"
# a forward pass at export compares the written model with the masked one
CHECK_TOLERANCE = 1e-4

__all__ = ["ExportResult", "export_run", "load_pruned"]


@dataclass(frozen=True)
class ExportResult(Result):
    """What ``export`` wrote. ``heads_kept``/``neurons_kept`` count the units that still
    contribute (all of them when not sliced; silent units kept only to pad GQA groups are
    listed per layer in ``ticketlens.json``). Sizes count every parameter (tied ones once);
    bytes are those of the parameters and of the written ``model*.safetensors``."""

    path: str
    run: str
    round: int
    sparsity: float
    sliced: bool
    stock_loadable: bool
    heads_kept: int
    heads_total: int
    neurons_kept: int
    neurons_total: int
    parameters: int
    dense_parameters: int
    parameter_bytes: int
    dense_parameter_bytes: int
    file_bytes: int
    max_abs_diff: float
    tokenizer: bool


def export_run(run: Run | str | os.PathLike[str], out: str | os.PathLike[str], *,
               round: int | None = None, slice: bool = True,
               overwrite: bool = False) -> ExportResult:
    """Write ``run``'s ticket (or round ``round``) to ``out`` as an HF model folder, sliced
    where whole heads or neurons are removable unless ``slice=False``."""
    import torch

    from ticketlens.models.anatomy import anatomy_of

    r = run if isinstance(run, Run) else open_run(run)
    out = Path(out)
    _check_target(out, overwrite)
    index = _round(r, round)
    masks = r.mask(index)
    model = _masked_model(r, index, masks)
    anatomy = anatomy_of(model)  # every attention and FFN matrix: locates the modules
    dense = _sizes(model)

    from ticketlens.exporter.plan import plan_layer
    from ticketlens.exporter.slicing import apply_plan, uniform_config

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

    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}.", dir=_parent(out)))
    try:
        with torch.no_grad(), _no_progress_bars():
            model.save_pretrained(tmp)
        has_tok = _save_tokenizer(r, model.config, tmp)
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
        write_json_atomic(tmp / META, _meta(r, result, plans if sliced else None))
        _move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def load_pruned(path: str | os.PathLike[str]) -> Any:
    """The model in a folder written by ``ticketlens export`` (sliced or not), in eval mode:
    built from its ``config.json``, shrunk to the stored per-layer head and neuron counts,
    loaded from its safetensors (no pickle, no remote code)."""
    import torch
    import transformers as tf
    from safetensors.torch import load_file

    from ticketlens.exporter.plan import LayerUnits
    from ticketlens.exporter.slicing import shrink_to_counts
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.load import model_class

    folder = Path(path)
    meta = _read_meta(folder)
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


# ----------------------------------------------------------------------------- helpers
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


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out}: exists and is not empty (use --overwrite to replace it)")


def _parent(out: Path) -> Path:
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``out`` (an old one is renamed away first and deleted
    after, so ``out`` is never half written)."""
    _check_target(out, overwrite)
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}.old.", dir=tmp.parent))
            os.replace(out, old / out.name)
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


# special tokens of the tokenizers ticketlens runs use (built-in word level: BERT's names)
SPECIAL_TOKENS = {
    "unk_token": ("[UNK]", "<unk>", "<|endoftext|>"),
    "pad_token": ("[PAD]", "<pad>", "<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"),
    "cls_token": ("[CLS]", "<s>"),
    "sep_token": ("[SEP]", "</s>"),
    "mask_token": ("[MASK]", "<mask>"),
    "bos_token": ("<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>"),
    "eos_token": ("</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"),
}


def _save_tokenizer(run: Run, config, folder: Path) -> bool:
    """The run's ``tokenizer.json`` (an HF ``tokenizers`` file) as a fast tokenizer folder
    that ``AutoTokenizer`` loads; False when the run holds none."""
    if not run.paths.tokenizer.is_file():
        return False
    import transformers as tf
    from tokenizers import Tokenizer

    from ticketlens.models.load import uses_token_types

    tok = Tokenizer.from_file(str(run.paths.tokenizer))
    tok.no_truncation()  # the run's encode() left its training length set
    tok.no_padding()
    vocab = tok.get_vocab(with_added_tokens=True)
    specials = {role: next((t for t in names if t in vocab), None)
                for role, names in SPECIAL_TOKENS.items()}
    names = ["input_ids", "attention_mask"]
    if uses_token_types(config):
        names.insert(1, "token_type_ids")
    length = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions",
                                                                         None)
    fast = tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=names,
        **({"model_max_length": int(length)} if length else {}),
        **{k: v for k, v in specials.items() if v is not None})
    fast.save_pretrained(str(folder))
    return True


def _meta(run: Run, result: ExportResult, plans) -> dict[str, Any]:
    import torch
    import transformers

    from ticketlens.core.version import __version__

    info = run.manifest.model
    return {
        "format": EXPORT_FORMAT, "format_version": 1, "ticketlens_version": __version__,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "run": str(run.path.resolve()), "run_name": run.name, "round": result.round,
        "ticket_round": run.ticket_round, "task": run.task, "model": info.name,
        "family": info.family, "objective": info.objective, "sparsity": result.sparsity,
        "sliced": result.sliced, "stock_loadable": result.stock_loadable,
        "units": {"heads": {"kept": result.heads_kept, "total": result.heads_total},
                  "neurons": {"kept": result.neurons_kept, "total": result.neurons_total}},
        "parameters": {"exported": result.parameters, "dense": result.dense_parameters},
        "parameter_bytes": {"exported": result.parameter_bytes,
                            "dense": result.dense_parameter_bytes},
        "file_bytes": result.file_bytes, "max_abs_diff": result.max_abs_diff,
        # per layer: the original indices of the heads, K/V heads and neurons kept, in order
        "layers": [p.units.to_dict() for p in plans] if plans else None,
    }


def _read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META
    if not folder.is_dir():
        raise RunFormatError(f"{folder}: no such folder")
    if not path.is_file():
        raise RunFormatError(f"{folder}: not written by `ticketlens export` (no {META})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFormatError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise RunFormatError(f"{path}: not a ticketlens export record")
    return meta


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
