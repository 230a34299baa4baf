"""``ticketlens export --format compressed-tensors|onnx``: a ticket in a format serving stacks
load (``hf``, the default, is :func:`ticketlens.exporter.write.export_run`).

compressed-tensors (``pip install 'ticketlens[ct]'``)
    The masked (not sliced) model with its prunable ``nn.Linear`` matrices quantized by
    ticketlens' arithmetic (``compress.quant``: symmetric int8 per output channel, int4 per
    group) and stored through the ``compressed-tensors`` library's compressors: int8 and int4
    packed into int32 (``pack-quantized``) with float32 scales, ``quantization_config`` in
    ``config.json``, so that ``AutoModelFor...from_pretrained(DIR)`` loads it wherever the
    library is installed. Pruned weights are integer zeros. The library's versions that
    transformers 5 accepts (>= 0.15) have no sparse compressor any more (``sparsity_config``
    is written empty), so the ticket's sparsity cannot be stored as a bitmask through it:
    ``--quant none`` is refused, saying so. Embeddings, norms, biases and the head stay
    float32.
onnx (``pip install 'ticketlens[onnx]'``)
    The sliced model (dead heads and neurons removed, as ``--format hf``) traced with
    ``torch.onnx.export`` (opset 17, dynamic batch and sequence axes, eager attention) into
    ``model.onnx``: inputs ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the
    model takes them), output ``logits``. ``--quant int8``: onnxruntime's dynamic int8
    quantization of the weights (``quantize_dynamic``, QInt8). onnxruntime has no dynamic
    int4: ``--quant int4`` is refused.

Both check what they wrote: the folder is loaded back (``from_pretrained`` / an onnxruntime
session) and its logits on a fixed random batch are compared with ticketlens' own model of the
same variant (``max_abs_diff``); compressed-tensors and unquantized onnx must agree within
1e-4 (otherwise the export fails: never a wrong model), dynamic int8 reports its difference.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core.errors import ConfigError
from ticketlens.core.result import Result
from ticketlens.core.run import Run

__all__ = ["FORMATS", "QUANTS", "FormatExport", "export_format"]

FORMATS = ("hf", "compressed-tensors", "onnx")
QUANTS = ("none", "int8", "int4")
CHECK_TOLERANCE = 1e-4
FORMAT_META = "ticketlens-format.json"


@dataclass(frozen=True)
class FormatExport(Result):
    """What ``export --format compressed-tensors|onnx`` wrote. ``file_bytes``: the model
    file(s); ``max_abs_diff``: the reloaded folder's logits against ticketlens' model of the
    same variant on a fixed random batch."""

    path: str
    format: str
    quant: str
    group: int | None
    run: str
    round: int
    sparsity: float
    sliced: bool
    file_bytes: int
    max_abs_diff: float
    tokenizer: bool
    files: tuple[str, ...]


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"--format {extra} needs the {module} package: pip install "
                          f"'ticketlens[{'ct' if extra == 'compressed-tensors' else extra}]'"
                          ) from None


def check_combination(fmt: str, quant: str, slice: bool | None) -> None:
    """One line (ConfigError) for what a format cannot hold."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r} (choose from {', '.join(FORMATS)})")
    if quant not in QUANTS:
        raise ConfigError(f"unknown --quant {quant!r} (choose from {', '.join(QUANTS)})")
    if fmt == "hf" and quant != "none":
        raise ConfigError("--format hf holds float weights only; int8/int4: --format "
                          "compressed-tensors (or onnx for int8)")
    if fmt == "compressed-tensors":
        if quant == "none":
            raise ConfigError("compressed-tensors cannot store the ticket's sparsity as a "
                              "bitmask (its versions >= 0.15, which transformers 5 needs, "
                              "have no sparse compressor): use --quant int8|int4 (pruned "
                              "weights as integer zeros) or --format hf")
        if slice:
            raise ConfigError("--format compressed-tensors writes the dense shapes (stock "
                              "from_pretrained cannot build sliced BERT/GPT-2 layers): drop "
                              "--slice")
    if fmt == "onnx" and quant == "int4":
        raise ConfigError("--format onnx: onnxruntime's dynamic quantization is int8 only; "
                          "use --quant int8 or --format compressed-tensors --quant int4")


def export_format(run: Run | str | os.PathLike[str], out: str | os.PathLike[str], *,
                  format: str, quant: str = "none", group: int = 64,
                  round: int | None = None, slice: bool | None = None,
                  overwrite: bool = False) -> FormatExport:
    """Write ``run``'s ticket (or round ``round``) to ``out`` as ``format``."""
    check_combination(format, quant, slice)
    if format == "hf":
        raise ConfigError("--format hf is ticketlens.exporter.export_run")
    from ticketlens.compress.config import GROUPS

    if quant == "int4" and group not in GROUPS:
        raise ConfigError(f"--group must be one of {', '.join(map(str, GROUPS))}")
    if format == "compressed-tensors":
        _need("compressed_tensors", format)
    else:
        _need("onnx", "onnx")
        _need("onnxruntime", "onnx")
    from ticketlens.exporter.folder import move_into_place, temp_folder
    from ticketlens.exporter.write import open_masked

    r, out, index, masks, model = open_masked(run, out, round, overwrite)
    tmp = temp_folder(out)
    try:
        if format == "compressed-tensors":
            files, sliced = _write_ct(model, masks, quant, group, tmp), False
            diff = _check_ct(model, masks, quant, group, tmp)
        else:
            sliced = slice is not False and _slice(model, masks)
            files, diff = _write_onnx(model, quant, tmp)
        from ticketlens.exporter.tokenizer import save_tokenizer

        has_tok = save_tokenizer(r, model.config, tmp)
        res = FormatExport(
            path=str(out), format=format, quant=quant, group=group if quant == "int4" else None,
            run=str(r.path), round=index, sparsity=r.manifest.round(index).sparsity,
            sliced=sliced, file_bytes=sum((tmp / f).stat().st_size for f in files),
            max_abs_diff=float(diff), tokenizer=has_tok, files=tuple(files))
        from ticketlens.core.io import write_json_atomic

        write_json_atomic(tmp / FORMAT_META, res.to_dict())
        move_into_place(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return res


# --------------------------------------------------------------------------- batches
def _batch(config: Any, n: int = 4, length: int = 16) -> dict[str, Any]:
    """A fixed random batch (one row padded) for the checks."""
    import torch

    from ticketlens.models.load import uses_token_types

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, int(config.vocab_size), (n, length), generator=g)
    att = torch.ones_like(ids)
    att[0, length // 2:] = 0
    batch = {"input_ids": ids, "attention_mask": att}
    if uses_token_types(config):
        batch["token_type_ids"] = torch.zeros_like(ids)
    return batch


# --------------------------------------------------------------------------- compressed-tensors
def _linear_targets(model: Any, masks: Any) -> list[str]:
    import torch

    names = sorted(n[: -len(".weight")] for n in masks)
    odd = [n for n in names if not isinstance(model.get_submodule(n), torch.nn.Linear)]
    if odd:
        raise ConfigError(f"--format compressed-tensors quantizes nn.Linear layers; "
                          f"{odd[0]} is a {type(model.get_submodule(odd[0])).__name__} "
                          "(GPT-2's fused Conv1D): use --format hf or onnx")
    return names


def ticketlens_variant(model: Any, masks: Any, quant: str, group: int) -> Any:
    """A copy of the masked model with its prunable matrices replaced by ticketlens'
    dequantized int8/int4 weights (``compress``'s evaluation of that variant)."""
    import copy

    import torch

    from ticketlens.compress.quant import dequantize, quantize

    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        for n in _linear_targets(ref, masks):
            w = ref.get_submodule(n).weight
            w.copy_(dequantize(quantize(w, 8 if quant == "int8" else 4,
                                        group if quant == "int4" else None)))
    return ref


def _write_ct(model: Any, masks: Any, quant: str, group: int, folder: Path) -> list[str]:
    import copy
    import logging

    import torch
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        QuantizationStatus,
        apply_quantization_config,
    )

    from ticketlens.compress.quant import quantize
    from ticketlens.exporter.write import _no_progress_bars

    logging.getLogger("compressed_tensors").setLevel(logging.ERROR)
    bits = 8 if quant == "int8" else 4
    g = group if quant == "int4" else None
    names = _linear_targets(model, masks)
    # the weights are ticketlens' dequantized values, so the library's round(w / scale)
    # gives back exactly ticketlens' integers
    m = ticketlens_variant(model, masks, quant, group)
    args = QuantizationArgs(num_bits=bits, type="int", symmetric=True,
                            strategy="group" if g else "channel", group_size=g)
    qc = QuantizationConfig(config_groups={"group_0": QuantizationScheme(
        targets=names, weights=args)}, quantization_status=QuantizationStatus.FROZEN)
    with _quiet():
        apply_quantization_config(m, qc)
        with torch.no_grad():
            for n in names:
                mod = m.get_submodule(n)
                qt = quantize(copy.deepcopy(model.get_submodule(n).weight), bits, g)
                mod.weight_scale.copy_(qt.scale.to(mod.weight_scale.dtype))
                mod.weight_zero_point.zero_()
        comp = ModelCompressor.from_pretrained_model(m, quantization_format="pack-quantized")
        comp.compress_model(m)
        with _no_progress_bars():
            m.save_pretrained(folder)
        comp.update_config(str(folder))
    return sorted(p.name for p in folder.glob("*.safetensors"))


def _check_ct(model: Any, masks: Any, quant: str, group: int, folder: Path) -> float:
    import torch

    from ticketlens.models.load import model_class

    ref = ticketlens_variant(model, masks, quant, group)
    objective = "classification" if "ForSequenceClassification" in type(model).__name__ \
        else "mlm" if "MaskedLM" in type(model).__name__ else "clm"
    with _quiet():
        back = model_class(objective).from_pretrained(str(folder)).eval()
    batch = _batch(model.config)
    with torch.no_grad():
        diff = float((back(**batch).logits - ref(**batch).logits).abs().max())
    if diff > CHECK_TOLERANCE:
        raise RuntimeError(f"the compressed-tensors folder differs from ticketlens' {quant} "
                           f"model by {diff:.3g}")
    return diff


# --------------------------------------------------------------------------- onnx
def _slice(model: Any, masks: Any) -> bool:
    """Remove dead heads and neurons in place (as ``--format hf``); True when any went."""
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.slice_plan import plan_layer
    from ticketlens.models.slicing import apply_plan

    anatomy = anatomy_of(model)
    plans = [plan_layer(model, anatomy, masks, layer) for layer in range(anatomy.num_layers)]
    if not sum(p.removed_heads + p.removed_neurons for p in plans):
        return False
    apply_plan(model, anatomy, plans)
    return True


def _write_onnx(model: Any, quant: str, folder: Path) -> tuple[list[str], float]:
    import warnings

    import numpy as np
    import onnxruntime as ort
    import torch

    model = model.eval()
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")  # sdpa's masks do not trace to ONNX
    batch = _batch(model.config)
    names = list(batch)

    class Logits(torch.nn.Module):
        def __init__(self, m: Any):
            super().__init__()
            self.m = m

        def forward(self, *inputs: Any) -> Any:
            return self.m(**dict(zip(names, inputs, strict=True))).logits

    path = folder / "model.onnx"
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        torch.onnx.export(Logits(model).eval(), tuple(batch.values()), str(path),
                          input_names=names, output_names=["logits"],
                          dynamic_axes={**axes, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    model.eval()
    if quant == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        fp32 = folder / "model.fp32.onnx"
        path.rename(fp32)
        with _quiet():
            quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8)
        fp32.unlink()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: v.numpy() for k, v in batch.items()})[0]
    with torch.no_grad():
        want = model(**batch).logits.numpy()
    diff = float(np.abs(got - want).max())
    if quant == "none" and diff > CHECK_TOLERANCE:
        raise RuntimeError(f"the ONNX model differs from the torch one by {diff:.3g}")
    return ["model.onnx"], diff


class _quiet:
    """Silence the libraries' loggers and progress bars (root logging, loguru) for a
    block."""

    def __enter__(self) -> None:
        import logging

        self._level = logging.root.level
        logging.root.setLevel(logging.ERROR)
        try:
            from loguru import logger

            logger.disable("compressed_tensors")
        except ImportError:
            pass

    def __exit__(self, *exc: Any) -> None:
        import logging

        logging.root.setLevel(self._level)
