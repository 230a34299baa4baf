"""The ticket as a circuit: is what IMP kept a faithful subgraph of the dense model?

In the dense trained model (no retraining) every head and FFN neuron the ticket removed is
ablated, and the dense model's metric on dev is measured (the faithfulness of circuit-discovery
work, e.g. ACDC, edge pruning). Beside it, the same numbers of heads and of neurons kept by
other rules, each ablating the rest:

- ``attribution patching`` (Nanda 2023; Kramar et al. 2024): the first-order estimate of what
  ablating a unit does to the loss, ``(a_ablated - a_clean) . dL/da`` summed over the unit's
  dimensions and every position of an example; a unit's importance is the mean over
  attribution examples of the estimate's absolute value; the top units are kept;
- ``gate importance``: Michel et al. 2019's ``E|dL/dg|`` of a gate on the unit's output,
  normalised per layer (``pruning.structured.gradient_importance``, what ``find
  --importance gradient`` ranks by); the top units are kept;
- ``random``: units drawn uniformly at random over the whole model (``draws`` draws, mean,
  standard deviation and range);
- ``random, same count per layer`` (with ``layer_matched``; another ``draws`` evaluations):
  the same, with as many units of each kind in every layer as the ticket keeps there (the
  control for a ticket that prunes some layers more: it separates *which layers* from *which
  units within a layer*);
- ``least important``: the units with the lowest attribution-patching importance are kept.

Ablation (``ablation``): ``mean`` replaces a unit's activation, at every position, by its mean
over the dev examples' real (non-padding) tokens; ``zero`` by 0. A head's activation is its
slice of the input of the attention output projection, a neuron's its input to the FFN output
projection, so zero-ablating a head is exactly zeroing its columns of O. Hooks are forward
pre-hooks added in context managers and always removed.

Faithfulness is ``ablated metric / dense metric``, and normalised against a constant
prediction, ``(ablated - chance) / (dense - chance)`` with chance the best metric any one
constant class scores on these dev examples (0 for a regression's Pearson); undefined (NaN,
``null`` in JSON) when the dense model does not beat that constant.

Which units did the ticket remove? A structured ticket's unit masks say. An unstructured
ticket keeps a fraction of each unit's weights: a head's is the mean of its Q, K, V, O slices'
kept fractions, a neuron's the mean of its input and output sides'; a unit counts as removed
when it is dead (a slice that silences it is fully pruned: ``core.structure``) or when its kept
fraction is below ``threshold`` (default 0.5) times the mean kept fraction of its kind (at 90%
sparsity: under 5% of its weights kept). The rank correlation between importance and survival
uses the kept fraction itself, so it does not depend on the threshold.

Overlap: of the ``k`` units the ticket keeps and the top ``k`` by an attribution, how many are
shared, against ``k^2 / N`` expected by chance, with the hypergeometric tail probability
(``scipy.stats.hypergeom``) of at least that many. Attribution is computed on training
examples (``attribution_examples``), the metric on dev examples, so no selection sees the
examples it is judged on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.errors import AnalysisError, ConfigError, RunFormatError
from ticketlens.core.result import Result

if TYPE_CHECKING:
    from ticketlens.core.run import Run

KINDS = ("head", "neuron")
ABLATIONS = ("mean", "zero")
DEFAULT_THRESHOLD = 0.5


# ----------------------------------------------------------------------------- hooks
def _sites(model: Any, anatomy: Anatomy, kind: str) -> list[Any]:
    """The module whose input carries each layer's ``kind`` activations (O; FFN output)."""
    role = "o" if kind == "head" else "ffn_out"
    out = []
    for layer in range(anatomy.num_layers):
        t = next(t for t in anatomy.layer_tensors(layer) if t.role == role)
        out.append(model.get_submodule(t.name.rsplit(".", 1)[0]))
    return out


def _width(anatomy: Anatomy, kind: str) -> tuple[int, int]:
    """(units per layer, activation dimensions per unit)."""
    return (anatomy.num_heads, anatomy.head_dim) if kind == "head" else \
        (anatomy.intermediate, 1)


@contextmanager
def ablated(model: Any, anatomy: Anatomy, remove: Mapping[str, np.ndarray],
            means: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Ablate units while inside: ``remove[kind]`` is (layers, units) bool, True = ablate;
    ``means[kind]`` (layers, units * dims) replaces their activations (``None``: zeros)."""
    import torch

    handles = []
    try:
        for kind, mask in remove.items():
            mask = np.asarray(mask, bool)
            if not mask.any():
                continue
            _, dims = _width(anatomy, kind)
            for layer, module in enumerate(_sites(model, anatomy, kind)):
                if not mask[layer].any():
                    continue
                p = next(model.parameters())
                off = torch.as_tensor(np.repeat(mask[layer], dims), dtype=p.dtype,
                                      device=p.device)
                fill = None if means is None else means[kind][layer].to(p.device, p.dtype) * off

                def hook(_mod, args, off=off, fill=fill):
                    x = args[0] * (1 - off)  # (..., units * dims)
                    return (x if fill is None else x + fill, *args[1:])

                handles.append(module.register_forward_pre_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _recording(model: Any, anatomy: Anatomy, kinds: Sequence[str],
               fn: Any) -> Iterator[None]:
    """Forward pre-hooks calling ``fn(kind, layer, x)`` and using what it returns as input."""
    handles = []
    try:
        for kind in kinds:
            for layer, module in enumerate(_sites(model, anatomy, kind)):
                def hook(_mod, args, kind=kind, layer=layer):
                    return (fn(kind, layer, args[0]), *args[1:])

                handles.append(module.register_forward_pre_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def activation_means(model: Any, anatomy: Anatomy, batches: Sequence[Mapping[str, Any]],
                     kinds: Sequence[str] = KINDS) -> dict[str, Any]:
    """Mean activation of every unit dimension over the real (non-padding) tokens of
    ``batches``: ``{kind: (layers, units * dims)}`` float64 tensors."""
    import torch

    sums: dict[tuple[str, int], Any] = {}
    count = 0
    current: dict[str, Any] = {}

    def record(kind: str, layer: int, x: Any) -> Any:
        w = current["mask"].to(x.dtype)  # (B, T)
        s = (x.detach() * w[..., None]).sum(dim=(0, 1)).double()
        sums[(kind, layer)] = sums.get((kind, layer), 0) + s
        return x

    model.eval()
    with torch.no_grad(), _recording(model, anatomy, kinds, record):
        for b in batches:
            current["mask"] = b["attention_mask"]
            count += int(b["attention_mask"].sum())
            model(**b)
    return {k: torch.stack([sums[(k, layer)] for layer in range(anatomy.num_layers)])
            / max(1, count) for k in kinds}


def attribution_patching(model: Any, anatomy: Anatomy, batches: Sequence[Mapping[str, Any]],
                         means: Mapping[str, Any] | None = None,
                         kinds: Sequence[str] = KINDS) -> dict[str, dict[str, np.ndarray]]:
    """Per unit, the first-order estimate of the change in an example's loss when the unit is
    ablated (to ``means``, or to zero), ``sum_{positions, dims} (a_ablated - a) dL_i/da``:
    ``{kind: {"signed": mean over examples, "abs": mean |.|}}``, (layers, units) arrays.

    The model's loss is a mean over the batch, so an example's own gradient is the batch
    gradient times the batch size. Parameters are frozen while scoring (only zero leaves
    added to the activations need gradients) and restored after."""
    import torch

    model.eval()
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    leaves: dict[tuple[str, int], Any] = {}

    def tap(kind: str, layer: int, x: Any) -> Any:
        z = torch.zeros_like(x, requires_grad=True)  # dL/dz = dL/dx
        leaves[(kind, layer)] = (x.detach(), z)
        return x + z

    signed = {k: torch.zeros(anatomy.num_layers, _width(anatomy, k)[0], dtype=torch.float64)
              for k in kinds}
    absolute = {k: torch.zeros_like(v) for k, v in signed.items()}
    n = 0
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with _recording(model, anatomy, kinds, tap):
            for b in batches:
                leaves.clear()
                loss = model(**b).loss
                keys = list(leaves)
                grads = torch.autograd.grad(loss, [leaves[k][1] for k in keys])
                size = b["input_ids"].shape[0]
                for (kind, layer), g in zip(keys, grads, strict=True):
                    x = leaves[(kind, layer)][0]
                    target = torch.zeros_like(x) if means is None else \
                        means[kind][layer].to(x.device, x.dtype).expand_as(x)
                    units, dims = _width(anatomy, kind)
                    d = ((target - x) * g).double().sum(dim=1)  # (B, units * dims)
                    effect = d.reshape(size, units, dims).sum(-1).cpu() * size  # (B, units)
                    signed[kind][layer] += effect.sum(0)
                    absolute[kind][layer] += effect.abs().sum(0)
                n += size
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(before[name])
    return {k: {"signed": (signed[k] / max(1, n)).numpy(),
                "abs": (absolute[k] / max(1, n)).numpy()} for k in kinds}


@dataclass(frozen=True)
class Scored:
    """A model's metric and mean loss on some batches."""

    metric: float
    loss: float


def score(model: Any, batches: Sequence[Mapping[str, Any]], metric: str,
          regression: bool = False) -> Scored:
    """The task's ``metric`` and the mean loss of ``model`` as it is on ``batches``."""
    import torch

    from ticketlens.pruning.metrics import classification_metrics, regression_metrics

    model.eval()
    preds, labels, loss, n = [], [], 0.0, 0
    with torch.no_grad():
        for b in batches:
            out = model(**b)
            logits = out.logits.float()
            preds.append(logits[:, 0] if regression else logits.argmax(-1))
            labels.append(b["labels"])
            loss += float(out.loss) * len(b["labels"])
            n += len(b["labels"])
    p, y = torch.cat(preds).cpu(), torch.cat(labels).cpu()
    got = regression_metrics(p, y) if regression else classification_metrics(p, y, metric)
    return Scored(float(got[metric]), loss / max(1, n))


def constant_chance(labels: Sequence[Any], metric: str, regression: bool = False) -> float:
    """The best ``metric`` a constant prediction scores on ``labels`` (0 for a regression:
    a constant has no correlation)."""
    import torch

    from ticketlens.pruning.metrics import classification_metrics

    if regression:
        return 0.0
    y = torch.as_tensor(list(labels))
    return max(classification_metrics(torch.full_like(y, int(c)), y, metric)[metric]
               for c in sorted(set(y.tolist())))


# ----------------------------------------------------------------------------- selection
def keep_top(scores: np.ndarray, k: int) -> np.ndarray:
    """(layers, units) bool: the ``k`` highest ``scores`` over all layers (ties: lower
    index first)."""
    flat = np.zeros(scores.size, bool)
    flat[np.argsort(-np.asarray(scores, np.float64).reshape(-1), kind="stable")[:k]] = True
    return flat.reshape(scores.shape)


def overlap_vs_chance(kept: np.ndarray, scores: np.ndarray) -> tuple[int, float, float]:
    """(shared units, expected by chance, P(shared >= observed)) between the ``k`` kept units
    and the top ``k`` by ``scores`` (hypergeometric: N units, k marked, k drawn)."""
    from scipy import stats

    kept = np.asarray(kept, bool)
    n, k = kept.size, int(kept.sum())
    shared = int((kept & keep_top(scores, k)).sum())
    p = float(stats.hypergeom.sf(shared - 1, n, k, k)) if 0 < k < n else float("nan")
    return shared, k * k / n if n else float("nan"), p


def ticket_units(run: Any, r: int, threshold: float = DEFAULT_THRESHOLD
                 ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], str]:
    """(kept units by kind, survival by kind: kept fraction or 0/1, the rule used) of round
    ``r`` (see the module doc)."""
    drawn = run.drawn_units(r)
    if drawn is not None:
        kept = {"head": np.asarray(drawn[0], bool), "neuron": np.asarray(drawn[1], bool)}
        return kept, {k: v.astype(float) for k, v in kept.items()}, "the structured unit masks"
    if run.structured:
        u = run.units(r)
        kept = {"head": np.asarray(u.head, bool), "neuron": np.asarray(u.neuron, bool)}
        return kept, {k: v.astype(float) for k, v in kept.items()}, "the structured masks"
    import warnings

    from ticketlens.core.structure import head_kept_fractions, neuron_kept_fractions

    masks = run.mask(r)
    with warnings.catch_warnings():  # all-NaN units (no prunable slice) count as kept
        warnings.simplefilter("ignore", RuntimeWarning)
        frac = {"head": np.nanmean(head_kept_fractions(run.anatomy, masks), axis=-1),
                "neuron": np.nanmean(neuron_kept_fractions(run.anatomy, masks), axis=-1)}
    frac = {k: np.where(np.isnan(v), 1.0, v) for k, v in frac.items()}
    alive = run.units(r)
    kept = {k: np.asarray(getattr(alive, k), bool) & (frac[k] >= threshold * frac[k].mean())
            for k in KINDS}
    return kept, frac, (f"dead, or keeping under {threshold:g} x the mean kept fraction of its "
                        "kind")


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class AblationRow(Result):
    """The dense model with the units outside a selection ablated."""

    label: str  # dense | ticket | attribution patching | gate importance | random | ...
    heads_removed: int
    neurons_removed: int
    metric: float  # the mean over draws for ``random``
    loss: float
    faithfulness: float  # metric / dense metric
    normalised: float  # (metric - chance) / (dense - chance)
    metric_sd: float | None = None  # random: standard deviation over the draws
    metric_range: tuple[float, float] | None = None  # random: (min, max) over the draws
    draws: int = 1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AblationRow:
        rng = d.get("metric_range")
        return cls(str(d["label"]), int(d["heads_removed"]), int(d["neurons_removed"]),
                   float(d["metric"]), float(d["loss"]), _float(d["faithfulness"]),
                   _float(d["normalised"]), None if d.get("metric_sd") is None else
                   float(d["metric_sd"]), None if rng is None else (float(rng[0]),
                                                                     float(rng[1])),
                   int(d.get("draws", 1)))


def _float(x: Any) -> float:
    """JSON's null (an undefined number) back to NaN."""
    return float("nan") if x is None else float(x)


@dataclass(frozen=True)
class UnitAgreement(Result):
    """Do the ticket's kept units agree with an attribution's top units?"""

    kind: str  # head | neuron
    scorer: str  # attribution patching | gate importance
    units: int
    kept: int
    shared: int  # kept by the ticket and in the attribution's top ``kept``
    expected: float  # by chance: kept^2 / units
    p_value: float  # hypergeometric P(shared >= observed)
    spearman: float  # rank correlation of importance and survival (kept fraction or 0/1)
    spearman_p: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnitAgreement:
        return cls(str(d["kind"]), str(d["scorer"]), int(d["units"]), int(d["kept"]),
                   int(d["shared"]), _float(d["expected"]), _float(d["p_value"]),
                   _float(d["spearman"]), _float(d["spearman_p"]))


@dataclass(frozen=True)
class CircuitResult(Result):
    run: str
    round: int
    metric: str
    ablation: str  # mean | zero
    examples: int  # dev examples the metric is measured on
    attribution_examples: int  # training examples attribution is computed on
    chance: float  # the best constant prediction's metric on those dev examples
    removal_rule: str  # how the ticket's removed units were read
    threshold: float | None  # unstructured tickets: the kept-fraction threshold
    seed: int  # the random draws'
    rows: tuple[AblationRow, ...]
    agreement: tuple[UnitAgreement, ...]
    importance: Mapping[str, Mapping[str, np.ndarray]]  # scorer -> kind -> (layers, units)
    survival: Mapping[str, np.ndarray]  # kind -> (layers, units) kept fraction or 0/1
    wall_time_s: float

    def row(self, label: str) -> AblationRow:
        return next(r for r in self.rows if r.label == label)

    def findings(self, alpha: float = 0.05) -> tuple[str, ...]:
        """Plain sentences, each with its number and its control or chance level
        (:func:`circuit_findings`)."""
        return circuit_findings(self, alpha)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CircuitResult:
        return cls(str(d["run"]), int(d["round"]), str(d["metric"]), str(d["ablation"]),
                   int(d["examples"]), int(d["attribution_examples"]), float(d["chance"]),
                   str(d["removal_rule"]), None if d.get("threshold") is None else
                   float(d["threshold"]), int(d["seed"]),
                   tuple(AblationRow.from_dict(r) for r in d["rows"]),
                   tuple(UnitAgreement.from_dict(a) for a in d["agreement"]),
                   {s: {k: np.asarray(v, float) for k, v in kinds.items()}
                    for s, kinds in d["importance"].items()},
                   {k: np.asarray(v, float) for k, v in d["survival"].items()},
                   float(d.get("wall_time_s", 0.0)))


def circuit_findings(res: CircuitResult, alpha: float = 0.05) -> tuple[str, ...]:
    """What the circuit table says, in sentences: the ticket's faithfulness beside the random
    selections of the same size (a rank test: above all ``D`` exchangeable draws happens with
    probability ``1 / (D + 1)`` when the ticket's units are no better than random ones), the
    attribution selections, and each overlap with attribution's top units against chance
    (Holm-adjusted over the overlaps tested); what does not clear ``alpha`` is said as not
    found."""
    from ticketlens.analysis.roles import holm

    m, out = res.metric, []
    labels = {r.label for r in res.rows}
    if not {"dense", "ticket"} <= labels:
        return ()
    d, t = res.row("dense"), res.row("ticket")
    norm = "" if t.normalised is None or t.normalised != t.normalised else \
        f", {t.normalised:.3f} of dense's margin over a constant prediction ({res.chance:.4f})"
    out.append(f"Ablating the {t.heads_removed} heads and {t.neurons_removed} FFN neurons the "
               f"ticket removed ({res.ablation} ablation, no retraining) leaves the dense model "
               f"at {m} {t.metric:.4f} against {d.metric:.4f}: faithfulness "
               f"{t.faithfulness:.3f}{norm}.")
    randoms = ("random", RANDOM_PER_LAYER)  # the controls first, then the other selections
    out += [_random_sentence(r, t, alpha) for r in res.rows if r.label in randoms]
    for r in res.rows:
        if r.label not in ("dense", "ticket", *randoms):
            out.append(f"The same numbers of units kept as '{r.label}': {m} "
                       f"{r.metric:.4f} (faithfulness {r.faithfulness:.3f}).")
    tested = [a for a in res.agreement if a.p_value == a.p_value]
    adjusted = dict(zip(map(id, tested), holm([a.p_value for a in tested]), strict=True))
    for a in res.agreement:
        base = (f"{a.shared} of the ticket's {a.kept} kept {a.kind}s are among the top "
                f"{a.kept} by {a.scorer}; {a.expected:.1f} expected by chance")
        if id(a) not in adjusted:
            out.append(f"{base}: nothing to test (the ticket keeps every {a.kind}, or no {a.kind} at all).")
        elif adjusted[id(a)] < alpha:
            out.append(f"{base}, {_pv(a.p_value)}: more than chance (Holm-adjusted "
                       f"{_pv(adjusted[id(a)])}).")
        else:
            out.append(f"{base}, {_pv(a.p_value)}: no overlap beyond chance found "
                       f"(Holm-adjusted {_pv(adjusted[id(a)])} >= {alpha:g}).")
    return tuple(out)


def _random_sentence(r: AblationRow, t: AblationRow, alpha: float) -> str:
    """The ticket beside random selections of its size. The test is one-sided, in the
    direction the analysis asks about (do the ticket's units carry the dense function better
    than random ones?): scoring above all ``D`` exchangeable draws happens with probability
    ``1 / (D + 1)`` when they do not. A ticket below every draw is described, not tested (a
    test in both directions would need ``2 / (D + 1)``)."""
    lo, hi = r.metric_range if r.metric_range is not None else (r.metric, r.metric)
    rank_p = 1 / (r.draws + 1)
    how = "in every layer" if r.label == RANDOM_PER_LAYER else "in all"
    base = (f"The same numbers of units {how} kept at random score {r.metric:.4f} on average "
            f"(sd {(r.metric_sd or 0.0):.4f} over {r.draws} draws, range {lo:.4f} to "
            f"{hi:.4f})")
    if t.metric > hi and rank_p < alpha:
        return (f"{base}: the ticket's units do better than every draw (one-sided rank p = "
                f"{rank_p:.2g}).")
    if t.metric < lo:
        return (f"{base}: the ticket's units do worse than every draw (described, not tested: "
                "the test asks whether they do better).")
    why = "within their range" if lo <= t.metric <= hi else \
        f"{r.draws} draws cannot show a difference at {alpha:g}"
    return f"{base}: no difference from random selections found ({why})."


def _pv(p: float) -> str:
    return "p < 1e-300" if p == 0 else f"p = {p:.2g}"


def read_circuit(run: Any) -> CircuitResult | None:
    """The circuit table ``ticketlens circuit --save`` stored in ``run`` (None if none)."""
    import json

    path = run.paths.circuit
    if not path.is_file():
        return None
    try:
        return CircuitResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise RunFormatError(f"{path}: unreadable circuit record ({exc})") from None


def save_circuit(run: Any, result: CircuitResult) -> None:
    """Store ``result`` in ``run`` (``analysis/circuit.json``, atomically)."""
    from ticketlens.core.run import RunWriter

    RunWriter(run.path).circuit(result.to_dict())


# ----------------------------------------------------------------------------- the analysis
def _batches(tok: Any, split: Any, max_length: int, model: Any, regression: bool,
             batch_size: int) -> list[dict[str, Any]]:
    from ticketlens.data.batching import TensorData, collate, eval_batches
    from ticketlens.models.load import uses_token_types

    data = TensorData(tok.encode(split.texts, split.pairs, max_length), list(split.labels),
                      regression=regression)
    out = []
    for idx in eval_batches(data, batch_size):
        b = collate(data, idx, tok.pad_id)
        if not uses_token_types(model.config):
            b.pop("token_type_ids")
        out.append(b)
    return out


def circuit(run: Run | str | os.PathLike[str], *, round: int | None = None, ablation: str = "mean",
            examples: int = 512, attribution_examples: int = 256, draws: int = 20,
            seed: int = 0, threshold: float = DEFAULT_THRESHOLD,
            batch_size: int = 64, layer_matched: bool = False) -> CircuitResult:
    """The ticket of ``run`` (or round ``round``) as a circuit of its dense model; see the
    module doc. A :class:`CircuitResult`."""
    from ticketlens.analysis.inputs import one_run
    from ticketlens.core.config import FindConfig
    from ticketlens.data.tasks import load_task
    from ticketlens.data.tokenizer import TextTokenizer
    from ticketlens.models.load import model_from_run
    from ticketlens.pruning.structured import gradient_importance

    _check_settings(ablation, examples, attribution_examples, draws, threshold, batch_size)
    t0 = time.perf_counter()
    run = _checked_run(one_run(run, what="circuit", needs="the dense weights"))
    r = run.round_index(round)
    a = run.anatomy
    cfg = FindConfig.from_dict(dict(run.manifest.config))
    task = load_task(cfg.data)
    model = model_from_run(run, "dense")
    tok = TextTokenizer.from_file(run.paths.tokenizer)
    regression = bool(task.regression)
    metric = run.metric
    dev = task.dev.head(examples)
    train = task.train.head(attribution_examples)
    dev_b = _batches(tok, dev, cfg.data.max_length, model, regression, batch_size)
    train_b = _batches(tok, train, cfg.data.max_length, model, regression, batch_size)

    kept, survival, rule = ticket_units(run, r, threshold)
    means = activation_means(model, a, dev_b) if ablation == "mean" else None
    atp = attribution_patching(model, a, train_b, means)
    gate = gradient_importance(model, a, KINDS, train_b)
    scorers = {"attribution patching": {k: atp[k]["abs"] for k in KINDS},
               "gate importance": {k: np.asarray(gate[k]) for k in KINDS}}
    k_kept = {k: int(kept[k].sum()) for k in KINDS}

    dense = score(model, dev_b, metric, regression)
    chance = constant_chance(dev.labels, metric, regression)

    def row(label: str, keep: Mapping[str, np.ndarray]) -> tuple[Scored, dict[str, int]]:
        remove = {k: ~np.asarray(keep[k], bool) for k in KINDS}
        with ablated(model, a, remove, means):
            got = score(model, dev_b, metric, regression)
        return got, {k: int(v.sum()) for k, v in remove.items()}

    def ratio(x: float, base: float) -> float:
        return x / base if base else float("nan")

    def make(label: str, s: Scored, removed: dict[str, int], **extra: Any) -> AblationRow:
        return AblationRow(label, removed["head"], removed["neuron"], s.metric, s.loss,
                           ratio(s.metric, dense.metric),
                           ratio(s.metric - chance, dense.metric - chance)
                           if dense.metric > chance else float("nan"), **extra)

    rows = [make("dense", dense, {"head": 0, "neuron": 0}), make("ticket", *row("ticket", kept))]
    for name, sc in scorers.items():
        rows.append(make(name, *row(name, {k: keep_top(sc[k], k_kept[k]) for k in KINDS})))
    rows.append(make("least important (attribution patching)", *row("least", {
        k: keep_top(-scorers["attribution patching"][k], k_kept[k]) for k in KINDS})))
    rng = np.random.default_rng(seed)
    controls = (("random", False),) + (((RANDOM_PER_LAYER, True),) if layer_matched else ())
    for label, per_layer in controls:
        got = [row(label, random_keep({k: kept[k] for k in KINDS}, rng, per_layer)) for _ in range(draws)]
        vals = np.array([g[0].metric for g in got])
        rows.append(make(label, Scored(float(vals.mean()), float(np.mean(
            [g[0].loss for g in got]))), got[0][1],
            metric_sd=float(vals.std(ddof=1)) if draws > 1 else 0.0,
            metric_range=(float(vals.min()), float(vals.max())), draws=draws))

    return CircuitResult(str(run.path), r, metric, ablation, len(dev.labels),
                         len(train.labels), float(chance), rule,
                         None if run.drawn_units(r) is not None or run.structured else threshold,
                         seed, tuple(rows), tuple(_agreement(kept, scorers, survival)),
                         scorers, survival, float(np.round(time.perf_counter() - t0, 3)))


RANDOM_PER_LAYER = "random, same count per layer"


def random_keep(kept: Mapping[str, np.ndarray], rng: np.random.Generator,
                per_layer: bool) -> dict[str, np.ndarray]:
    """A random selection of as many units of each kind as ``kept`` holds (``kept[kind]`` is
    (layers, units), True = kept): over the whole model, or with ``per_layer`` the same count
    in every layer as the ticket (the control for a ticket that prunes some layers more)."""
    out = {}
    for k, m in kept.items():
        m = np.asarray(m, bool)
        if not per_layer:
            out[k] = keep_top(rng.random(m.shape), int(m.sum()))
            continue
        out[k] = np.zeros_like(m)
        for layer in range(m.shape[0]):
            n = int(m[layer].sum())
            if n:
                out[k][layer, rng.permutation(m.shape[1])[:n]] = True
    return out


def _check_settings(ablation: str, examples: int, attribution_examples: int, draws: int,
                    threshold: float, batch_size: int) -> None:
    if ablation not in ABLATIONS:
        raise ConfigError(f"--ablation must be mean or zero, not {ablation!r}")
    if examples < 1 or attribution_examples < 1 or draws < 1 or batch_size < 1:
        raise ConfigError("--examples, --attribution-examples and --draws must be >= 1")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError("--threshold must be in [0, 1]")


def _checked_run(run: Run) -> Run:
    """``run`` when :func:`circuit` can explain it (one line if not)."""
    if not run.manifest.config or not run.has_weights:
        raise AnalysisError(f"{run.path}: circuit needs the dense weights of a run made by "
                             "`ticketlens find`; imported masks carry none")
    if run.manifest.model.objective != "classification":
        raise AnalysisError(f"{run.path}: circuit explains classification runs; this run's "
                             f"objective is {run.manifest.model.objective}")
    a = run.anatomy
    if not a.num_heads or not a.intermediate or not all(
            any(t.role == role for t in a.tensors) for role in ("o", "ffn_out")):
        raise AnalysisError(f"{run.path}: the prunable tensors hold no attention output or "
                             "FFN output projection to ablate at (check --include/--exclude)")
    return run


def _agreement(kept: Mapping[str, np.ndarray], scorers: Mapping[str, Mapping[str, np.ndarray]],
               survival: Mapping[str, np.ndarray]) -> list[UnitAgreement]:
    """Each scorer's top units against the ticket's (overlap vs chance) and its scores
    against the units' survival (Spearman), per kind of unit."""
    from scipy import stats

    agreement = []
    for kind in KINDS:
        for name, sc in scorers.items():
            shared, expected, p = overlap_vs_chance(kept[kind], sc[kind])
            s, sv = sc[kind].reshape(-1), survival[kind].reshape(-1)
            if np.ptp(s) > 0 and np.ptp(sv) > 0:
                rho = stats.spearmanr(s, sv)
                rho_v, rho_p = float(rho.statistic), float(rho.pvalue)
            else:  # a constant side: no ranking to correlate
                rho_v = rho_p = float("nan")
            agreement.append(UnitAgreement(kind, name, int(kept[kind].size),
                                           int(kept[kind].sum()), shared, float(expected), p,
                                           rho_v, rho_p))
    return agreement
