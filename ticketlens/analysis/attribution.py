"""Attribution: what the dense model and its ticket rely on.

- Tokens: captum ``LayerIntegratedGradients`` on the input (word) embeddings, target the
  class given (the gold label on dev examples, else the dense model's prediction); the
  baseline replaces every non-special token by the pad token (special tokens kept). Per text:
  Spearman correlation of the dense and ticket attributions, top-k agreement, and the IG
  convergence delta (completeness: attributions sum to f(x) - f(baseline) up to it).
- Units: Michel et al. 2019's importance ``E |dL/dg|`` of a gate ``g`` (at 1) on each head's
  output (before the output projection) and on each FFN neuron's activation (before the FFN
  output projection), per batch of the dev set as in their code. Gates are forward pre-hooks
  added in a context manager and always removed (transformers 5 has no ``head_mask``).
  Linked to survival: the share of the dense model's importance held by units alive in the
  ticket, against the share of units alive (what importance blind to survival would give).
- Ground truth (built-in tasks): the share of |attribution| on the tokens that decide the
  label, against their share of the tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import stats

from ticketlens.analysis.results import AttributionResult, TokenAttribution, UnitImportanceResult
from ticketlens.core.anatomy import Anatomy

if TYPE_CHECKING:
    from ticketlens.core.run import Run
    from ticketlens.data.tokenizer import TextTokenizer


# ----------------------------------------------------------------------------- gates
@contextmanager
def unit_gates(model: torch.nn.Module, anatomy: Anatomy, kind: str) -> Iterator[list[torch.Tensor]]:
    """Per-layer gates (``requires_grad``) on heads (``kind="head"``) or FFN neurons, as
    forward pre-hooks on the output projections; removed on exit, whatever happens."""
    role = "o" if kind == "head" else "ffn_out"
    width = anatomy.num_heads if kind == "head" else anatomy.intermediate
    repeat = anatomy.head_dim if kind == "head" else 1
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    gates: list[torch.Tensor] = []
    handles = []
    try:
        for layer in range(anatomy.num_layers):
            t = next(t for t in anatomy.layer_tensors(layer) if t.role == role)
            module = model.get_submodule(t.name.rsplit(".", 1)[0])
            gate = torch.ones(width, dtype=dtype, device=device, requires_grad=True)
            gates.append(gate)

            def hook(_mod, args, gate=gate):
                x = args[0]  # (..., heads * head_dim) or (..., intermediate)
                g = gate.repeat_interleave(repeat) if repeat > 1 else gate
                return (x * g, *args[1:])

            handles.append(module.register_forward_pre_hook(hook))
        yield gates
    finally:
        for h in handles:
            h.remove()


def unit_importance(model: torch.nn.Module, anatomy: Anatomy, batches: Sequence[dict],
                    kind: str) -> np.ndarray:
    """(layers, units) mean over batches of ``|dL/dg|`` at ``g = 1``."""
    model.eval()
    acc = None
    with unit_gates(model, anatomy, kind) as gates:
        for batch in batches:
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, gates)
            g = torch.stack([x.detach().abs() for x in grads]).double()
            acc = g if acc is None else acc + g
    return (acc / max(1, len(batches))).numpy()


def importance_vs_survival(importance: np.ndarray, alive: np.ndarray, kept: np.ndarray,
                           kind: str) -> UnitImportanceResult:
    total = float(importance.sum())
    share = float(importance[alive].sum() / total) if total else float("nan")
    ok = ~np.isnan(kept)
    rho = float(stats.spearmanr(importance[ok], kept[ok]).statistic) if ok.sum() > 2 \
        else float("nan")
    return UnitImportanceResult(kind, importance, alive, share, float(alive.mean()), kept, rho)


def integrated_gradients(model: torch.nn.Module, batch: dict, targets: torch.Tensor,
                         special: torch.Tensor, pad_id: int, n_steps: int = 32
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(attributions (B, T), convergence deltas (B,)) of the target logits."""
    from captum.attr import LayerIntegratedGradients

    ids = batch["input_ids"]
    extra = {k: v for k, v in batch.items() if k not in ("input_ids", "labels")}
    keys = sorted(extra)

    def forward(input_ids, *args):
        return model(input_ids=input_ids, **dict(zip(keys, args, strict=True))).logits

    baseline = torch.where(special, ids, torch.full_like(ids, pad_id))
    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attr, delta = lig.attribute(ids, baselines=baseline, target=targets,
                                additional_forward_args=tuple(extra[k] for k in keys),
                                n_steps=n_steps, return_convergence_delta=True,
                                internal_batch_size=ids.shape[0] * 8)
    return attr.sum(-1).detach(), delta.detach()


def compare_tokens(dense: torch.nn.Module, ticket: torch.nn.Module, tokenizer: Any,
                   texts: Sequence[str], pairs: Sequence[str] | None = None,
                   labels: Sequence[int] | None = None,
                   evidence: Sequence[Sequence[tuple[int, int]]] | None = None, *,
                   k: int = 3, batch_size: int = 16, n_steps: int = 32,
                   max_length: int = 64) -> AttributionResult:
    """Token attributions of ``dense`` and ``ticket`` on the same inputs and targets: the
    given labels' logits (else the dense model's predictions); a regression model's one
    output (target 0) otherwise."""
    from ticketlens.data.batching import TensorData, collate
    from ticketlens.models.load import uses_token_types

    regression = _is_regression(dense)
    enc = tokenizer.encode(list(texts), None if pairs is None else list(pairs), max_length)
    data = TensorData(enc, [0] * len(texts))
    special_ids = {tokenizer.tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "<s>", "</s>",
                                                           "<|endoftext|>")} - {None}
    items = []
    for start in range(0, len(texts), batch_size):
        idx = list(range(start, min(len(texts), start + batch_size)))
        batch = collate(data, idx, tokenizer.pad_id)
        batch.pop("labels")
        if not uses_token_types(dense.config):
            batch.pop("token_type_ids", None)
        with torch.no_grad():
            dense_pred = dense(**batch).logits.argmax(-1)
        if regression:
            targets = torch.zeros(len(idx), dtype=torch.long)
        elif labels is not None:
            targets = torch.tensor([labels[i] for i in idx])
        else:
            targets = dense_pred
        special = torch.isin(batch["input_ids"], torch.tensor(sorted(special_ids))) | (
            batch["attention_mask"] == 0)
        a_d, d_d = integrated_gradients(dense, batch, targets, special, tokenizer.pad_id,
                                        n_steps)
        a_t, d_t = integrated_gradients(ticket, batch, targets, special, tokenizer.pad_id,
                                        n_steps)
        for row, i in enumerate(idx):
            n = len(enc.input_ids[i])
            tokens = tuple(tokenizer.tok.id_to_token(t) for t in enc.input_ids[i])
            ad, at = a_d[row, :n].double().numpy(), a_t[row, :n].double().numpy()
            content = [j for j in range(n) if not bool(special[row, j])]
            rho = stats.spearmanr(ad[content], at[content]).statistic if len(content) > 2 \
                else float("nan")
            kk = min(k, len(content))
            top_d = set(sorted(content, key=lambda j: -abs(ad[j]))[:kk])
            top_t = set(sorted(content, key=lambda j: -abs(at[j]))[:kk])
            ev = _evidence_tokens(tokens, texts[i], None if pairs is None else pairs[i],
                                  evidence[i] if evidence is not None else None)
            shares = _shares(ad, at, ev, content)
            items.append(TokenAttribution(
                texts[i], None if pairs is None else pairs[i], tokens, int(targets[row]),
                tuple(ad.tolist()), tuple(at.tolist()), float(d_d[row]), float(d_t[row]),
                float(rho), len(top_d & top_t) / kk if kk else float("nan"), ev, *shares,
                regression))
    return AttributionResult(k, tuple(items))


def _is_regression(model: torch.nn.Module) -> bool:
    return getattr(model.config, "problem_type", None) == "regression" or \
        getattr(model.config, "num_labels", 2) == 1


def _evidence_tokens(tokens: tuple[str, ...], text: str, pair: str | None,
                     evidence: Sequence[tuple[int, int]] | None) -> tuple[int, ...]:
    """Token positions of evidence words, for word-level tokenizers ([CLS] a.. [SEP] b..)."""
    if not evidence:
        return ()
    a = text.split()
    b = pair.split() if pair else []
    expect = ["[CLS]", *a, "[SEP]", *([*b, "[SEP]"] if pair else [])]
    if list(tokens) != expect:
        return ()  # not a word-level encoding of these words: no ground truth
    return tuple(1 + w if seg == 0 else 2 + len(a) + w for seg, w in evidence)


def _shares(ad: np.ndarray, at: np.ndarray, ev: tuple[int, ...], content: list[int]):
    if not ev or not content:
        return None, None, None
    def share(x: np.ndarray) -> float:
        tot = float(np.abs(x[content]).sum())
        return float(np.abs(x[list(ev)]).sum() / tot) if tot else float("nan")
    return share(ad), share(at), len(ev) / len(content)


# ----------------------------------------------------------------------------- runs
def load_pair(run: Run) -> tuple[torch.nn.Module, torch.nn.Module, TextTokenizer]:
    """(dense model, ticket model, tokenizer) of a run made by ``find`` (eager attention)."""
    from ticketlens.core.errors import RunFormatError
    from ticketlens.data.tokenizer import TextTokenizer
    from ticketlens.models.load import model_from_run

    if not run.has_weights:
        raise RunFormatError(f"{run.path}: this run has no weights (an imported mask?); "
                             "attribution needs a run made by `ticketlens find`")
    objective = run.manifest.model.objective
    if objective != "classification":
        raise RunFormatError(f"{run.path}: attribution explains classification runs; this "
                             f"run's objective is {objective}")
    dense = model_from_run(run, "dense", attn_implementation="eager")
    ticket = model_from_run(run, "ticket", attn_implementation="eager")
    return dense, ticket, TextTokenizer.from_file(run.paths.tokenizer)


def dev_sample(run: Run, n: int) -> tuple[Any, ...]:
    """The first ``n`` dev examples of the run's task: texts, pairs, labels, evidence."""
    from ticketlens.core.config import FindConfig
    from ticketlens.data.tasks import load_task

    cfg = FindConfig.from_dict(dict(run.manifest.config))
    task = load_task(cfg.data).dev.head(n)
    return task.texts, task.pairs, task.labels, task.evidence


def attribute_run(run: Run, *, texts: Sequence[str] = (), pairs: Sequence[str] | None = None,
                  n: int = 16, units: bool = False, k: int = 3, n_steps: int = 32,
                  unit_examples: int = 256) -> AttributionResult:
    """Token attribution on ``texts`` (else ``n`` dev examples), and unit importance."""
    from ticketlens.data.batching import TensorData, collate, eval_batches
    from ticketlens.models.load import uses_token_types

    dense, ticket, tok = load_pair(run)
    max_length = int(run.manifest.config.get("data", {}).get("max_length", 64))
    # the task is loaded once (for a hub dataset that is a dataset load), for both uses
    dev = dev_sample(run, max(n, unit_examples) if units else n) if units or not texts \
        else None
    if texts:
        res = compare_tokens(dense, ticket, tok, texts, pairs, k=k, n_steps=n_steps,
                             max_length=max_length)
    else:
        t, p, labels, ev = (None if x is None else x[:n] for x in dev)
        res = compare_tokens(dense, ticket, tok, t, p, labels, ev, k=k, n_steps=n_steps,
                             max_length=max_length)
    if not units:
        return res
    t, p, labels, _ = (None if x is None else x[:unit_examples] for x in dev)
    data = TensorData(tok.encode(t, p, max_length), list(labels),
                      regression=_is_regression(dense))
    batches = []
    for idx in eval_batches(data, 64):
        b = collate(data, idx, tok.pad_id)
        if not uses_token_types(dense.config):
            b.pop("token_type_ids")
        batches.append(b)
    from ticketlens.core.structure import head_kept_fractions, neuron_kept_fractions

    alive = run.units()
    masks = run.mask()
    kept = {"head": np.nanmean(head_kept_fractions(run.anatomy, masks), axis=-1),
            "neuron": np.nanmean(neuron_kept_fractions(run.anatomy, masks), axis=-1)}
    results = tuple(
        importance_vs_survival(unit_importance(dense, run.anatomy, batches, kind),
                               np.asarray(getattr(alive, kind)), kept[kind], kind)
        for kind in ("head", "neuron"))
    return AttributionResult(res.k, res.items, results)
