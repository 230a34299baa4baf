"""``compress(RUN)``: dense and ticket, quantized and distilled, measured in metric and bytes.

For each model (dense; the ticket; with a distilled run, born-again dense and the distilled
ticket) and each storage scheme, the variant is written to a real file
(:mod:`ticketlens.compress.store`), read back, and the state read back is what is evaluated
on the run's dev set (the run's config rebuilds task, tokenizer and model, on the CPU in
float32); its size on disk is the variant's bytes. torch's dynamic int8 is evaluated as torch
runs it (``quantize_dynamic``: int8 weights, activations quantized per batch at run time);
its file holds torch's int8 weights and scales. Every quantized variant is checked to keep
the ticket's pruned weights exactly zero. Then the 8-cell table (``compress.result``), its
Pareto front, and CPU latency at batch 1 and 32 (64 tokens, median, the same process and
threads) of dense fp32, dense dynamic int8, every Pareto-optimal variant and the sliced
ticket with dynamic int8, each as it runs (``result.runs_as``): weight-only files are read
back and dequantized to float32 as they were for evaluation, sliced ones are the smaller
model, dynamic int8 is torch's int8 kernels.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ticketlens.compress.config import CompressConfig
from ticketlens.compress.quant import QTensor, check_zeros_kept, quantize
from ticketlens.compress.result import (
    CELLS,
    Cell,
    CompressResult,
    Latency,
    VariantResult,
    pareto_flags,
    runs_as,
)
from ticketlens.compress.store import Stored, read_variant, write_variant
from ticketlens.core.config import FindConfig, flatten
from ticketlens.core.errors import ConfigError, RunFormatError
from ticketlens.core.run import Run, open_run

__all__ = ["compress", "dynamic_int8", "embedding_names", "stored_tensors", "tied_aliases"]

LATENCY_TOKENS = 64
LATENCY_BATCHES = (1, 32)


# --------------------------------------------------------------------------- inputs
def _checked_run(path: str | Path, role: str) -> Run:
    run = open_run(path)
    if not run.complete:
        raise RunFormatError(f"{run.path}: the run is not complete (no ticket yet); finish "
                             "it with the same `find` first")
    if not run.has_weights:
        raise RunFormatError(f"{run.path}: has no weights (imported masks carry none); "
                             f"{role} needs the dense and ticket weights `ticketlens find` "
                             "stores")
    return run


def _distill_settings(run: Run, distilled: Run) -> dict[str, Any]:
    """The distilled run must be the same search with ``--distill``; its alpha and T."""
    a = FindConfig.from_dict(dict(run.manifest.config))
    b = FindConfig.from_dict(dict(distilled.manifest.config))
    if not b.train.distill:
        raise ConfigError(f"--distilled {distilled.path}: was not found with --distill, so "
                          "its ticket has no teacher; run the same `find` with --distill")
    same = dataclasses.replace(b, train=dataclasses.replace(
        b.train, distill=False, distill_alpha=a.train.distill_alpha,
        distill_temperature=a.train.distill_temperature))
    if same != a:
        ours, theirs = flatten(a.to_dict()), flatten(same.to_dict())
        diff = next(k for k in ours if ours[k] != theirs.get(k))
        raise ConfigError(f"--distilled {distilled.path}: other settings than {run.path} "
                          f"({diff}: {ours[diff]!r} in RUN, {theirs.get(diff)!r} in RUN2); it "
                          "must be the same `find` with --distill")
    return {"alpha": b.train.distill_alpha, "temperature": b.train.distill_temperature}


# --------------------------------------------------------------------------- variants
def tied_aliases(model: torch.nn.Module) -> dict[str, str]:
    """State-dict names that share storage with an earlier name (tied LM heads):
    alias -> the name stored."""
    first: dict[tuple[int, int], str] = {}
    aliases: dict[str, str] = {}
    for name, t in model.state_dict().items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in first and t.numel():
            aliases[name] = first[key]
        else:
            first.setdefault(key, name)
    return aliases


def embedding_names(model: torch.nn.Module) -> list[str]:
    """The weights of every ``nn.Embedding`` (word, position, token type) in the model's
    state dict."""
    state = model.state_dict()
    return [f"{n}.weight" for n, m in model.named_modules()
            if isinstance(m, torch.nn.Embedding) and f"{n}.weight" in state]


def stored_tensors(state: Mapping[str, torch.Tensor], prunable: list[str], scheme: str,
                   masks: Mapping[str, torch.Tensor] | None, group: int,
                   aliases: Mapping[str, str], embeddings: Mapping[str, tuple[int, int]]
                   | None = None) -> dict[str, Stored]:
    """How each tensor of ``state`` is stored under a weight-only ``scheme`` (fp32, fp16,
    int8, int4): prunable tensors quantized (after the mask when there is one), the tensors
    named in ``embeddings`` quantized with their ``(bits, group)`` (group 0: one scale per
    row), every other tensor float32. A tensor tied to a stored one is stored once (with it,
    quantized or not), so a tied LM head stays tied."""
    out: dict[str, Stored] = {}
    for name, t in state.items():
        if name in aliases:
            continue
        if embeddings and name in embeddings:
            bits, g = embeddings[name]
            out[name] = Stored(quantize(t, bits, g or None))
            continue
        if name not in prunable:
            out[name] = Stored(t.float())
            continue
        mask = None if masks is None else masks[name]
        if scheme in ("fp32", "fp16"):
            out[name] = Stored(t.float(), mask, "float16" if scheme == "fp16" else "float32")
        elif scheme == "int8":
            out[name] = Stored(quantize(t, 8), mask)
        elif scheme == "int4":
            # a sliced matrix's width need not divide the group: one scale a row then
            out[name] = Stored(quantize(t, 4, group if t.shape[1] % group == 0 else None),
                               mask)
        else:
            raise ConfigError(f"unknown quantization scheme {scheme!r}")
    return out


def dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """torch's own dynamic quantization of every ``nn.Linear`` (int8 weights per tensor,
    symmetric; activations quantized per batch), on a copy; CPU only."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {torch.nn.Linear},
                                dtype=torch.qint8)


def _dynamic_stored(qmodel: torch.nn.Module, state: Mapping[str, torch.Tensor],
                    masks: Mapping[str, torch.Tensor] | None, aliases: Mapping[str, str]
                    ) -> tuple[dict[str, Stored], dict[str, torch.Tensor], dict[str, str]]:
    """The tensors of a dynamic-int8 model as stored, torch's dequantized weights, and the
    ties still stored once."""
    from torch.ao.nn.quantized.dynamic import Linear as DynLinear

    out: dict[str, Stored] = {}
    dq: dict[str, torch.Tensor] = {}
    for mod_name, mod in qmodel.named_modules():
        if not isinstance(mod, DynLinear):
            continue
        w = mod.weight()
        if w.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric) or \
                w.q_zero_point() != 0:
            raise AssertionError(f"{mod_name}: torch's dynamic int8 is not symmetric here")
        name = f"{mod_name}.weight"
        qt = QTensor(w.int_repr(), torch.tensor([[w.q_scale()]], dtype=torch.float32), 8,
                     None)
        out[name] = Stored(qt, None if masks is None or name not in masks else masks[name])
        dq[name] = w.dequantize()
        if mod.bias() is not None:
            out[f"{mod_name}.bias"] = Stored(mod.bias().detach().float())
    # a tie is kept only when neither side was quantized (an MLM decoder tied to the
    # embeddings is an nn.Linear: int8 here, while the embedding stays float32)
    kept = {a: n for a, n in aliases.items() if a not in dq and n not in dq and a not in out}
    for name, t in state.items():
        if name not in out and name not in kept:
            out[name] = Stored(t.float())
    return out, dq, kept


# --------------------------------------------------------------------------- measuring
@contextlib.contextmanager
def _folder(keep_dir: str) -> Iterator[Path]:
    if keep_dir:
        Path(keep_dir).mkdir(parents=True, exist_ok=True)
        yield Path(keep_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="ticketlens-compress-") as d:
            yield Path(d)


@torch.no_grad()
def _latency(model: torch.nn.Module, vocab: int, types: bool, batch: int,
             repeats: int) -> float:
    """Median ms of one forward pass on ``batch`` x 64 random tokens (after 2 warm-ups)."""
    g = torch.Generator().manual_seed(0)
    inputs = {"input_ids": torch.randint(5, vocab, (batch, LATENCY_TOKENS), generator=g),
              "attention_mask": torch.ones(batch, LATENCY_TOKENS, dtype=torch.long)}
    if types:
        inputs["token_type_ids"] = torch.zeros(batch, LATENCY_TOKENS, dtype=torch.long)
    model.eval()
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        model(**inputs)
        if i >= 2:
            times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 3)


def _born_again(setup: Any, acc: Any, run: Run, distill: dict[str, Any],
                reporter: Any) -> dict[str, torch.Tensor]:
    """The 'distill' cell: the dense model retrained from the run's rewind point (the dense
    schedule and data order of round 0) against the trained dense model as teacher."""
    from ticketlens.pruning.arms import ArmSpec, ArmTrainer, cpu_state, derive_seed
    from ticketlens.pruning.distill import teacher_loss

    tcfg = dataclasses.replace(setup.cfg.train, distill=True, distill_alpha=distill["alpha"],
                               distill_temperature=distill["temperature"])
    s = dataclasses.replace(setup, cfg=dataclasses.replace(setup.cfg, train=tcfg))
    trainer = ArmTrainer(s, acc, reporter)
    loss = teacher_loss(s, run.weights("dense"), acc)
    rw = run.manifest.rewind
    start_step = rw.step if rw is not None and rw.mode == "step" else 0
    ones = {n: torch.ones(shape, dtype=torch.bool) for n, shape in setup.anatomy.shapes.items()}
    res = trainer.train(ArmSpec("distill: born-again dense", run.weights("rewind"), ones,
                                start_step, derive_seed(setup.cfg.seed, "round", 0),
                                loss_fn=loss))
    reporter.line(f"born-again dense (distilled from dense): {setup.metric} "
                  f"{res.metrics[setup.metric]:.4f}")
    return cpu_state(trainer.base)


def compress(run_path: str | Path, cfg: CompressConfig | None = None, *,
             distilled: str | Path | None = None, reporter: Any = None,
             write: bool = True) -> CompressResult:
    """Measure the variants of ``run_path`` (and of the distilled run, when given), fill the
    8 cells, save ``compress.json`` in the run (unless ``write=False``) and return it."""
    from ticketlens.compress.result import write_compress
    from ticketlens.pruning.progress import Reporter
    from ticketlens.pruning.train import plan_threads, torch_threads

    cfg = cfg or CompressConfig()
    reporter = reporter or Reporter()
    run = _checked_run(run_path, "compress")
    if FindConfig.from_dict(dict(run.manifest.config)).train.distill:
        raise ConfigError(f"{run.path}: was found with --distill; pass the run without "
                          "distillation as RUN and this one as --distilled")
    d_run = _checked_run(distilled, "--distilled") if distilled else None
    distill = _distill_settings(run, d_run) if d_run is not None else {}
    with torch_threads(plan_threads()) as threads:
        result = _measure(run, d_run, distill, cfg, reporter, threads.torch_threads)
    if write:
        write_compress(run.path, result)
    return result


def _measure(run: Run, d_run: Run | None, distill: dict[str, Any], cfg: CompressConfig,
             reporter: Any, threads: int) -> CompressResult:
    from ticketlens.pruning.setup import prepare
    from ticketlens.pruning.train import make_accelerator

    fcfg = FindConfig.from_dict(dict(run.manifest.config))
    fcfg = dataclasses.replace(fcfg, train=dataclasses.replace(
        fcfg.train, device="cpu", precision="fp32"))
    setup = prepare(fcfg)
    acc = make_accelerator(fcfg.train)
    metric = run.metric

    def masks_of(r: Run) -> dict[str, torch.Tensor]:
        return {n: torch.from_numpy(m) for n, m in r.mask().items()}

    models: list[tuple[str, dict[str, torch.Tensor], dict[str, torch.Tensor] | None]] = [
        ("dense", run.weights("dense"), None), ("ticket", run.weights("ticket"), masks_of(run))]
    if d_run is not None:
        models += [("distilled-dense", _born_again(setup, acc, run, distill, reporter), None),
                   ("distilled-ticket", d_run.weights("ticket"), masks_of(d_run))]
    bench = _Bench(setup, acc, cfg, reporter, metric, fcfg.train.eval_batch_size)
    higher = metric != "perplexity"
    with _folder(cfg.keep_dir) as folder:  # latency reloads the files: measured inside
        measured = [m for label, state, masks in models
                    for m in bench.variants(folder, label, state, masks)]
        variants = _variant_results(measured, metric, higher)
        cells = _cells(variants, cfg.scheme_label(cfg.cell_scheme), metric, higher)
        latency = bench.latency(variants, cells, threads) if cfg.latency else []
    if d_run is not None:
        distill = {**distill, "distill_cell": "born-again dense: retrained from the rewind "
                   "point against the trained dense model", "prune_distill_cell":
                   "the ticket of the --distilled run"}
    return CompressResult(
        run=str(run.path), metric=metric, higher_is_better=higher,
        cell_scheme=cfg.scheme_label(cfg.cell_scheme), variants=variants, cells=cells,
        latency=tuple(latency), distilled_run=str(d_run.path) if d_run else None,
        distill=distill, notes=tuple(_notes(run, variants, cfg, metric)),
        versions=_versions())


# (name, label, scheme label, metrics, bytes, sparsity, bytes of the prunable tensors)
_Measured = tuple[str, str, str, dict[str, float], int, float, int]


class _Bench:
    """Writes, reads back and evaluates each variant of one model (``compress``'s table),
    keeping for each variant how to rebuild the model as it was evaluated (``runners``: the
    latency measurement runs it)."""

    def __init__(self, setup: Any, acc: Any, cfg: CompressConfig, reporter: Any, metric: str,
                 batch_size: int):
        self.setup, self.acc, self.cfg, self.reporter = setup, acc, cfg, reporter
        self.metric, self.batch_size = metric, batch_size
        self.model = setup.model
        self.prunable = list(setup.anatomy.names)
        self.aliases = tied_aliases(self.model)
        self.embeddings = [n for n in embedding_names(self.model) if n not in self.aliases]
        self.runners: dict[str, Callable[[], torch.nn.Module]] = {}
        self.trim = _Trim.of(setup) if cfg.vocab else None

    def evaluate(self, model: torch.nn.Module, setup: Any = None) -> dict[str, float]:
        from ticketlens.pruning.objectives import evaluate_metrics

        return evaluate_metrics(self.acc, model, setup or self.setup, self.batch_size)

    def _plan(self, masks: Mapping[str, torch.Tensor] | None
              ) -> list[tuple[str, str | None, bool]]:
        """(weight scheme, embedding scheme or None, vocabulary trimmed) per variant: today's
        schemes, then each embedding scheme with the weights of the same scheme (float32
        when that scheme is not measured), then trimming alone and with each of them."""
        cfg = self.cfg
        plan: list[tuple[str, str | None, bool]] = [("fp32", None, False)]
        if masks is not None and cfg.fp16:
            plan.append(("fp16", None, False))
        plan += [(s, None, False) for s in cfg.schemes]
        emb = [(e if e in cfg.schemes else "fp32", e, False) for e in cfg.embeddings]
        plan += emb
        if self.trim is not None:
            plan.append(("fp32", None, True))
            plan += [(w, e, True) for w, e, _ in emb]
        return plan

    def _name(self, label: str, scheme: str, emb: str | None, trim: bool) -> tuple[str, str]:
        """The variant's name and its scheme label."""
        parts = [] if scheme == "fp32" else [self.cfg.scheme_label(scheme)]
        if emb is not None:
            parts.append(self.cfg.emb_label(emb))
        if trim:
            parts.append("vocab")
        return "+".join([label, *parts]), "+".join(parts) or "fp32"

    def variants(self, folder: Path, label: str, state: Mapping[str, torch.Tensor],
                 masks: Mapping[str, torch.Tensor] | None) -> list[_Measured]:
        """Every scheme of the model ``label`` (fp32, fp16 for tickets, ``cfg.schemes``)."""
        sparsity = 0.0 if masks is None else 1.0 - float(
            sum(int(m.sum()) for m in masks.values())) / sum(m.numel() for m in masks.values())
        out = []
        for scheme, emb, trim in self._plan(masks):
            name, slabel = self._name(label, scheme, emb, trim)
            payload: dict[str, int] = {}
            metrics, size = self._variant(folder / f"{name}.safetensors", name, label, scheme,
                                          state, masks, payload, emb, trim)
            self.reporter.line(f"{name:<34} {self.metric} {metrics[self.metric]:.4f}  "
                               f"{size / 1e6:9.3f} MB")
            out.append((name, label, slabel, metrics, size, sparsity,
                        sum(payload[n] for n in self.prunable)))
        if masks is not None and self.cfg.sliced:
            out += self._sliced(folder, label, state, masks, sparsity)
        return out

    def _sliced(self, folder: Path, label: str, state: Mapping[str, torch.Tensor],
                masks: Mapping[str, torch.Tensor], sparsity: float) -> list[_Measured]:
        """The ticket as ``export`` slices it (dead heads and FFN neurons removed, their
        constants folded into biases), stored densely, with every scheme of a dense model
        (weight-only int8 / int4, torch's dynamic int8, the embeddings quantized, the
        vocabulary trimmed); none when no whole unit is removable."""
        model = _sliced_model(self.model, state, masks)
        if model is None:
            return []
        sliced = {k: v.detach().clone() for k, v in model.state_dict().items()}
        out = []
        for scheme, emb, trim in self._plan(None):
            name, slabel = self._name(f"{label}+sliced", scheme, emb, trim)
            slabel = "sliced" if slabel == "fp32" else f"sliced+{slabel}"
            payload: dict[str, int] = {}
            metrics, size = self._variant(folder / f"{name}.safetensors", name, label, scheme,
                                          sliced, None, payload, emb, trim, base=model)
            self.reporter.line(f"{name:<34} {self.metric} {metrics[self.metric]:.4f}  "
                               f"{size / 1e6:9.3f} MB")
            out.append((name, label, slabel, metrics, size, sparsity,
                        sum(payload[n] for n in self.prunable)))
        return out

    def _variant(self, path: Path, name: str, label: str, scheme: str,
                 state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor] | None,
                 payload: dict[str, int], emb: str | None = None, trim: bool = False,
                 base: torch.nn.Module | None = None) -> tuple[dict[str, float], int]:
        """One variant written to ``path``, its pruned zeros checked, evaluated (``emb``:
        the embeddings quantized too; ``trim``: the vocabulary trimmed, its id mapping and
        tokenizer written beside ``path``; ``base``: the model ``state`` fits, when not the
        run's (a sliced ticket))."""
        base = self.model if base is None else base
        aliases = self.aliases if base is self.model else tied_aliases(base)
        model, setup = base, None
        if trim:
            assert self.trim is not None
            model, state, setup = self.trim.apply(model, state, self.setup)
            self.trim.write(path)
        embeddings = None if emb is None else {
            n: (int(emb[3:]), self.cfg.emb_group) for n in self.embeddings}
        if scheme == "dynamic-int8":
            model.load_state_dict(dict(state))
            qmodel = dynamic_int8(model)
            tensors, dq, ties = _dynamic_stored(qmodel, state, masks, aliases)
            size = write_variant(path, tensors, aliases=ties, meta={"variant": name},
                                 payload=payload)
            for n in self.prunable:
                check_zeros_kept(state[n], dq[n], f"{name}: {n}")
            self.runners[name] = functools.partial(_same, qmodel)
            return self.evaluate(qmodel), size
        tensors = stored_tensors(state, self.prunable, scheme, masks, self.cfg.group,
                                 aliases, embeddings)
        size = write_variant(path, tensors, aliases=aliases, meta={"variant": name},
                             payload=payload)
        back = read_variant(path)
        for n in self.prunable:
            check_zeros_kept(state[n], back[n], f"{name}: {n}")
        model.load_state_dict(dict(back))
        self.runners[name] = functools.partial(self._reload, path, trim, base)
        return self.evaluate(model, setup), size

    def _reload(self, path: Path, trim: bool, base: torch.nn.Module) -> torch.nn.Module:
        """The weight-only variant at ``path`` as evaluated: read back (dequantized to
        float32) into ``base`` (a trimmed-vocabulary copy of it for ``trim``)."""
        model = self.trim.shell(base) if trim and self.trim is not None else base
        return _loaded(model, path)

    def latency(self, variants: tuple[VariantResult, ...], cells: tuple[Cell, ...],
                threads: int) -> list[Latency]:
        """CPU latency at each of ``LATENCY_BATCHES`` of dense fp32 (the baseline, first),
        dense dynamic int8, every Pareto-optimal variant (of all variants, and of the 8
        cells) and every sliced dynamic-int8 variant, each model rebuilt as it was
        evaluated; speedup = dense fp32's ms at the same batch over the variant's."""
        from ticketlens.models.load import uses_token_types

        front = {c.variant for c in cells if c.pareto} | {v.name for v in variants if v.pareto}
        wanted = [v for v in variants if v.name in ("dense", "dense+dynamic-int8")] + [
            v for v in variants if v.name not in ("dense", "dense+dynamic-int8") and (
                v.name in front or v.scheme.endswith("sliced+dynamic-int8"))]
        out: list[Latency] = []
        base: dict[int, float] = {}
        for v in wanted:
            model = self.runners[v.name]()
            vocab = int(model.get_input_embeddings().num_embeddings)
            types = uses_token_types(model.config)
            for b in LATENCY_BATCHES:
                ms = _latency(model, vocab, types, b, self.cfg.latency_repeats)
                base.setdefault(b, ms)  # dense fp32 is measured first
                out.append(Latency(v.name, b, LATENCY_TOKENS, ms, threads, runs_as(v.scheme),
                                   round(base[b] / ms, 3)))
            self.reporter.line(f"latency {v.name:<34} " + "  ".join(
                f"batch {x.batch}: {x.ms:.1f} ms ({x.speedup:.2f}x)" for x in out[-2:]))
        return out


def _same(model: torch.nn.Module) -> torch.nn.Module:
    return model


def _loaded(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """``model`` with the variant file at ``path`` read back into it (as evaluated)."""
    model.load_state_dict(dict(read_variant(path)))
    return model


def _sliced_model(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                  masks: Mapping[str, torch.Tensor]) -> torch.nn.Module | None:
    """A copy of ``model`` holding the ticket ``state`` with its whole dead heads and FFN
    neurons removed (``export``'s slicing); None when there is none to remove."""
    from ticketlens.models.anatomy import anatomy_of
    from ticketlens.models.slice_plan import plan_layer
    from ticketlens.models.slicing import apply_plan
    from ticketlens.pruning.masking import MaskEnforcer

    model = copy.deepcopy(model)
    model.load_state_dict(dict(state))
    with torch.no_grad():
        MaskEnforcer(model, dict(masks)).apply_to_weights()
    anatomy = anatomy_of(model)
    np_masks = {n: m.numpy() for n, m in masks.items()}
    plans = [plan_layer(model, anatomy, np_masks, layer)
             for layer in range(anatomy.num_layers)]
    if not sum(p.removed_heads + p.removed_neurons for p in plans):
        return None
    apply_plan(model, anatomy, plans)
    return model


@dataclasses.dataclass(frozen=True)
class _Trim:
    """Vocabulary trimming of one run (``compress.vocab``): the kept ids, the new id of the
    unknown token, the trimmed tokenizer (None unless WordPiece)."""

    kept: tuple[int, ...]
    unk: int
    vocab_size: int
    word: str  # the word embedding's state-dict name
    tokenizer: str | None

    @classmethod
    def of(cls, setup: Any) -> _Trim | None:
        """None where trimming does not apply: LM objectives (the output is the vocabulary)
        and tokenizers without an unknown token."""
        from ticketlens.compress.vocab import covered_ids, trimmed_tokenizer_json, unk_token

        tok = setup.tokenizer.tok
        unk = unk_token(tok)
        if setup.objective != "classification" or unk is None:
            return None
        model = setup.model
        emb = model.get_input_embeddings()
        word = next(f"{n}.weight" for n, m in model.named_modules() if m is emb)
        kept = covered_ids(tok, (setup.train.enc.input_ids, setup.dev.enc.input_ids),
                           (setup.tokenizer.pad_id, setup.tokenizer.mask_id))
        kept = [i for i in kept if i < emb.num_embeddings]
        return cls(tuple(kept), kept.index(int(tok.token_to_id(unk))), emb.num_embeddings,
                   word, trimmed_tokenizer_json(tok, kept))

    def ids(self, rows: list[list[int]]) -> list[list[int]]:
        from ticketlens.compress.vocab import map_ids

        return [map_ids(r, self.kept, self.unk) for r in rows]

    def apply(self, model: torch.nn.Module, state: Mapping[str, torch.Tensor], setup: Any
              ) -> tuple[torch.nn.Module, dict[str, torch.Tensor], Any]:
        """A copy of ``model`` with the trimmed word embedding, ``state`` trimmed to fit, and
        ``setup`` with its dev ids (and padding id) mapped."""
        from ticketlens.data.batching import TensorData
        from ticketlens.data.tokenizer import Encoded

        kept = torch.tensor(self.kept)
        small = self.shell(model)
        trimmed = {**state, self.word: state[self.word][kept].clone()}
        tok = copy.copy(setup.tokenizer)
        tok.pad_id = self.ids([[setup.tokenizer.pad_id]])[0][0]
        dev = setup.dev
        dev = TensorData(Encoded(self.ids(dev.enc.input_ids), dev.enc.token_type_ids),
                         dev.labels, dev.regression)
        return small, trimmed, dataclasses.replace(setup, dev=dev, tokenizer=tok)

    def shell(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``model`` whose word embedding has the kept rows' shape."""
        small = copy.deepcopy(model)
        old = small.get_input_embeddings()
        pad = old.padding_idx
        new = torch.nn.Embedding(len(self.kept), old.embedding_dim,
                                 padding_idx=None if pad is None else self.kept.index(pad))
        small.set_input_embeddings(new)
        small.config.vocab_size = len(self.kept)
        return small

    def write(self, path: Path) -> None:
        """``NAME.vocab.json`` (the id mapping) and ``NAME.tokenizer.json`` beside ``path``."""
        from ticketlens.compress.vocab import mapping_record
        from ticketlens.core.io import write_bytes_atomic, write_json_atomic

        stem = path.name[: -len(".safetensors")]
        write_json_atomic(path.with_name(f"{stem}.vocab.json"),
                          mapping_record(self.kept, self.unk, self.vocab_size))
        if self.tokenizer is not None:
            write_bytes_atomic(path.with_name(f"{stem}.tokenizer.json"),
                               self.tokenizer.encode("utf-8"))


def _variant_results(measured: list[_Measured], metric: str,
                     higher: bool) -> tuple[VariantResult, ...]:
    """The table's rows: ratios against dense (the first row) and the Pareto flags."""
    dense_bytes, dense_prunable = measured[0][4], measured[0][6]
    flags = pareto_flags([(m[4], m[3][metric]) for m in measured], higher)
    return tuple(VariantResult(name, label, scheme, {k: float(v) for k, v in mt.items()},
                               size, round(dense_bytes / size, 4), round(sp, 6), flag,
                               pb, round(dense_prunable / pb, 4))
                 for (name, label, scheme, mt, size, sp, pb), flag in zip(
                     measured, flags, strict=True))


def _notes(run: Run, variants: tuple[VariantResult, ...], cfg: CompressConfig,
           metric: str) -> list[str]:
    notes = [
        "non-prunable tensors (embeddings, norms, biases, task head) are stored float32 in "
        "every variant, except that torch's dynamic int8 quantizes every nn.Linear (head "
        "and pooler too) per tensor, and the +emb variants quantize every embedding matrix "
        "(word, position, token type; a tied LM head with it) "
        + (f"per group of {cfg.emb_group}" if cfg.emb_group else "one scale per row"),
        "+vocab: the word embedding keeps only the ids in the task's train + dev data and "
        "the special tokens (others map to the unknown token; NAME.vocab.json and "
        "NAME.tokenizer.json beside the file, not counted in its bytes)",
        "+sliced: the ticket with its whole dead heads and FFN neurons removed (as `export` "
        "slices it), stored densely; int4 rows whose sliced width the group does not divide "
        "have one scale a row",
        f"int4 is symmetric with one float32 scale per group of {cfg.group} inputs; int8 one "
        "per output channel; pruned weights stay exactly 0 (checked)",
        "bytes: the size on disk of the safetensors file that holds the variant "
        "(ticket: 1-bit mask + kept values)",
        "latency: dense fp32, dense dynamic int8, every Pareto-optimal variant and the sliced "
        "ticket with dynamic int8, each rebuilt as evaluated and timed in this process on "
        f"random ids ({LATENCY_TOKENS} tokens, median of {cfg.latency_repeats} after 2 "
        "warm-ups): weight-only fp16/int8/int4 files are dequantized to float32 when read, "
        "so they run at the speed of their float32 shape (dense, or sliced); sliced variants "
        "are physically smaller; dynamic int8 runs torch's int8 kernels",
    ]
    recorded = next(r.metrics.get(metric) for r in run.rounds if r.index == 0)
    dense_now = variants[0].metrics[metric]
    if recorded is not None and abs(recorded - dense_now) > 1e-6:
        notes.append(f"dense re-evaluated at {dense_now:.6f}; the run recorded "
                     f"{recorded:.6f}")
    return notes


def _versions() -> dict[str, str]:
    from ticketlens.pruning.manifest import library_versions

    versions = library_versions()
    with contextlib.suppress(Exception):
        from importlib import metadata

        versions["torchao"] = metadata.version("torchao")
    return versions


def _cells(variants: tuple[VariantResult, ...], q: str, metric: str,
           higher: bool) -> tuple[Cell, ...]:
    """The 8 cells from the variants (``q``: the scheme label of the quantize cells)."""
    fill = {"none": "dense", "prune": "ticket", "quantize": f"dense+{q}",
            "distill": "distilled-dense", "prune+quantize": f"ticket+{q}",
            "prune+distill": "distilled-ticket", "quantize+distill": f"distilled-dense+{q}",
            "prune+quantize+distill": f"distilled-ticket+{q}"}
    by_name = {v.name: v for v in variants}
    present = [c for c in CELLS if fill[c] in by_name]
    flags = dict(zip(present, pareto_flags(
        [(by_name[fill[c]].bytes, by_name[fill[c]].metrics[metric]) for c in present],
        higher), strict=True))
    out = []
    for c in CELLS:
        v = by_name.get(fill[c])
        out.append(Cell(c, None) if v is None else Cell(
            c, v.name, v.metrics[metric], v.bytes, v.ratio, flags[c], v.prunable_ratio))
    return tuple(out)
