"""Measuring head roles (torch): attention maps read with the eager attention, per-head
statistics, Kovaleva pattern scores, and Olsson et al.'s induction probe.

transformers 5's default attention (sdpa) returns no attention maps, so the model is switched
to the eager implementation for the probe and switched back after (:func:`eager_attention`):
eager and sdpa compute the same function (the logits agree to float rounding, tested), and
the model leaves the probe as it came. No hook is attached; ``output_attentions=True`` gives
the query heads' maps, so a grouped-query (GQA) model reports each query head's own pattern.

Shapes: ``attn`` (batch, heads, queries, keys), each row a distribution over the keys the
query may see (its padding and, in causal models, the future masked out).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ticketlens.analysis.roles import (
    MIN_KEYS,
    PATTERNS,
    VERTICAL_COLUMNS,
    HeadRole,
    RoleRules,
    RolesError,
    assign_roles,
    kovaleva_type,
)

SEP_TOKENS = ("[SEP]", "</s>", "<|endoftext|>", "<eos>", "<|end_of_text|>", "<|im_end|>",
              "<|eot_id|>")
BOS_TOKENS = ("<s>", "<|begin_of_text|>", "<bos>", "<|im_start|>")
SPECIAL_TOKENS = (*SEP_TOKENS, *BOS_TOKENS, "[CLS]", "[PAD]", "[UNK]", "[MASK]", "<pad>",
                  "<unk>", "<mask>")
CAUSAL_FAMILIES = ("gpt2", "llama")
TARGETS = ("first", "sep", "punct", "same", "prev", "next")


@contextmanager
def eager_attention(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The model with the eager attention (which returns attention maps) inside the block,
    and its own implementation again after it, whatever happens."""
    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if switch:
            model.set_attn_implementation(before)


def is_causal(model: torch.nn.Module) -> bool:
    from ticketlens.models.anatomy import anatomy_of

    return anatomy_of(model).family in CAUSAL_FAMILIES


def is_punct(token: str) -> bool:
    """A token made of punctuation only, once word-piece marks (``##``, ``Ġ``, ``▁``) are
    stripped."""
    t = token.removeprefix("##").lstrip("Ġ▁").strip()
    return bool(t) and all(unicodedata.category(c).startswith("P") for c in t)


@dataclass
class TokenKinds:
    """Per-token-id flags (numpy bool arrays over the vocabulary)."""

    sep: np.ndarray
    punct: np.ndarray

    @classmethod
    def of(cls, tokenizer: Any, vocab_size: int) -> TokenKinds:
        """From a ``tokenizers.Tokenizer`` (or a :class:`TextTokenizer`)."""
        tok = getattr(tokenizer, "tok", tokenizer)
        sep = np.zeros(vocab_size, dtype=bool)
        punct = np.zeros(vocab_size, dtype=bool)
        for t in SEP_TOKENS:
            i = tok.token_to_id(t)
            if i is not None and i < vocab_size:
                sep[i] = True
        for i in range(min(vocab_size, tok.get_vocab_size(with_added_tokens=True))):
            s = tok.id_to_token(i)
            if s is not None and s not in SPECIAL_TOKENS and is_punct(s):
                punct[i] = True
        return cls(sep, punct)


# ----------------------------------------------------------------------------- statistics
class _Acc:
    """Sums over query tokens (and per map pattern types) of one model, every layer."""

    def __init__(self, layers: int, heads: int):
        self.sums = {k: np.zeros((layers, heads)) for k in (*TARGETS, "entropy", "entropy_norm")}
        self.count = {k: np.zeros((layers, heads)) for k in self.sums}
        self.types = np.zeros((layers, heads, len(PATTERNS)))

    def add(self, layer: int, stats: dict[str, tuple[torch.Tensor, torch.Tensor]],
            types: torch.Tensor) -> None:
        for k, (s, n) in stats.items():
            self.sums[k][layer] += s.double().numpy()
            self.count[k][layer] += n.double().numpy()
        t = types.numpy()  # (batch, heads), -1 where unclassifiable
        for j in range(len(PATTERNS)):
            self.types[layer, :, j] += (t == j).sum(axis=0)

    def mean(self, k: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count[k] > 0, self.sums[k] / self.count[k], np.nan)


def map_statistics(attn: torch.Tensor, valid: torch.Tensor, sep: torch.Tensor,
                   punct: torch.Tensor, causal: bool
                   ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], torch.Tensor,
                              dict[str, torch.Tensor]]:
    """Per-head sums over query tokens of one layer's maps, and each map's pattern type.

    ``attn`` (B, H, n, n); ``valid`` (B, n) bool (not padding); ``sep``, ``punct`` (B, n)
    bool flags of the key tokens. Returns ``({stat: (sum over queries (H,), count (H,))},
    types (B, H) index into PATTERNS or -1, {"V", "D", "G": (B, H) scores})``.
    """
    a = attn.detach().double()
    B, H, n, _ = a.shape
    idx = torch.arange(n)
    keys = valid[:, None, :] & valid[:, :, None]  # (B, n, n)
    if causal:
        keys = keys & (idx[None, :] <= idx[:, None])[None]
    a = a * keys[:, None]
    n_keys = keys.sum(-1).double()  # (B, n)
    q = valid.double()  # queries that count
    targets = {
        "first": (idx == 0)[None, None, :].expand(B, n, n),
        "sep": sep[:, None, :].expand(B, n, n),
        "punct": punct[:, None, :].expand(B, n, n),
        "same": (idx[:, None] == idx[None, :])[None].expand(B, n, n),
        "prev": (idx[None, :] == idx[:, None] - 1)[None].expand(B, n, n),
        "next": (idx[None, :] == idx[:, None] + 1)[None].expand(B, n, n),
    }
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    per_q = q.sum()
    for name, m in targets.items():
        mass = (a * (m & keys)[:, None]).sum(-1)  # (B, H, n)
        stats[name] = ((mass * q[:, None]).sum((0, 2)), per_q.expand(H))
    ent = -(a * torch.log(a.clamp_min(1e-30))).sum(-1)  # (B, H, n) nats
    stats["entropy"] = ((ent * q[:, None]).sum((0, 2)), per_q.expand(H))
    wide = (q * (n_keys >= 2)).double()
    norm = ent / torch.log(n_keys.clamp_min(2.0))[:, None]
    stats["entropy_norm"] = ((norm * wide[:, None]).sum((0, 2)), wide.sum().expand(H))
    scores = pattern_scores(a, keys, valid, sep, n_keys)
    types = torch.from_numpy(kovaleva_type(scores["V"].numpy(), scores["D"].numpy(),
                                           scores["G"].numpy()))
    return stats, types, scores


def pattern_scores(a: torch.Tensor, keys: torch.Tensor, valid: torch.Tensor,
                   sep: torch.Tensor, n_keys: torch.Tensor) -> dict[str, torch.Tensor]:
    """V, D, G scores (B, H) of the module doc of :mod:`ticketlens.analysis.roles`; NaN for a
    map with no eligible row (V, D) or one segment (G)."""
    n = a.shape[-1]
    idx = torch.arange(n)
    eligible = (valid & (n_keys >= MIN_KEYS)).double()  # (B, n)
    rows = eligible.sum(-1)  # (B,)

    def excess(mask: torch.Tensor) -> torch.Tensor:
        """Mean over eligible rows of (mass - u) / (1 - u), mask (B, [H,] n, n)."""
        m = mask if mask.dim() == 4 else mask[:, None]
        mass = (a * m).sum(-1)  # (B, H, n)
        u = m.double().sum(-1) / n_keys.clamp_min(1)[:, None]
        ex = torch.where(u < 1, (mass - u) / (1 - u).clamp_min(1e-12), torch.zeros_like(mass))
        with np.errstate(invalid="ignore"):
            return (ex * eligible[:, None]).sum(-1) / rows[:, None]  # NaN without rows

    band = keys & ((idx[:, None] - idx[None, :]).abs() <= 1)[None]
    off = keys & ~band
    column = (a * off[:, None] * eligible[:, None, :, None]).sum(-2)  # (B, H, n)
    k = min(VERTICAL_COLUMNS, n)
    top = column.topk(k, dim=-1).indices  # (B, H, k)
    chosen = torch.zeros_like(column, dtype=torch.bool).scatter_(-1, top, True)
    vertical = off[:, None] & chosen[:, :, None, :]  # (B, H, n, n)
    seg = torch.cumsum(sep.long(), dim=-1) - sep.long()  # [SEP]s before each position
    segments = (sep & valid).sum(-1)  # (B,)
    same_seg = keys & (seg[:, :, None] == seg[:, None, :])
    g = excess(same_seg)
    g[segments < 2] = math.nan
    return {"V": excess(vertical), "D": excess(band), "G": g}


def classify_map(attn: np.ndarray, *, causal: bool = False,
                 sep_positions: Sequence[int] = ()) -> str:
    """The pattern type of one attention map (queries x keys), by the rule of
    :mod:`ticketlens.analysis.roles` (``n/a`` when too short to classify)."""
    a = torch.as_tensor(np.asarray(attn, dtype=float))[None, None]
    n = a.shape[-1]
    valid = torch.ones(1, n, dtype=torch.bool)
    sep = torch.zeros(1, n, dtype=torch.bool)
    sep[0, list(sep_positions)] = True
    _, types, _ = map_statistics(a, valid, sep, torch.zeros_like(sep), causal)
    t = int(types[0, 0])
    return PATTERNS[t] if t >= 0 else "n/a"


# ----------------------------------------------------------------------------- probes
def _forward_kwargs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict:
    from ticketlens.models.load import uses_token_types

    keep = ["input_ids", "attention_mask"]
    if uses_token_types(model.config) and "token_type_ids" in batch:
        keep.append("token_type_ids")
    return {k: batch[k] for k in keep}


@torch.no_grad()
def measure_heads(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]],
                  kinds: TokenKinds, *, causal: bool | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-head means over the batches' query tokens (each ``(layers, heads)``) and the
    count of maps of each pattern type ``(layers, heads, 5)``."""
    causal = is_causal(model) if causal is None else causal
    model.eval()
    acc: _Acc | None = None
    sep_ids = torch.from_numpy(kinds.sep)
    punct_ids = torch.from_numpy(kinds.punct)
    seen_sep = False
    with eager_attention(model):
        for batch in batches:
            out = model(**_forward_kwargs(model, batch), output_attentions=True)
            atts = out.attentions
            if not atts or atts[0] is None:
                raise RolesError(f"{type(model).__name__} returns no attention maps")
            ids = batch["input_ids"].clamp(0, len(sep_ids) - 1)
            valid = batch["attention_mask"].bool()
            sep, punct = sep_ids[ids] & valid, punct_ids[ids] & valid
            seen_sep |= bool(sep.any())
            if acc is None:
                acc = _Acc(len(atts), atts[0].shape[1])
            for layer, att in enumerate(atts):
                stats, types, _ = map_statistics(att.float().cpu(), valid, sep, punct, causal)
                acc.add(layer, stats, types)
    if acc is None:
        raise RolesError("no inputs to measure")
    means = {k: acc.mean(k) for k in acc.sums}
    if not seen_sep:  # no input holds a [SEP] / end-of-text token: not measured
        means["sep"] = np.full_like(means["sep"], np.nan)
    return means, acc.types


@dataclass(frozen=True)
class InductionProbe:
    """Olsson et al.'s probe: ``sequences`` random token sequences repeated once."""

    induction: np.ndarray  # (layers, heads)
    previous_token: np.ndarray  # (layers, heads)
    induction_baseline: float  # what uniform causal attention scores
    previous_token_baseline: float
    repeat_loss: tuple[float, float] | None  # LM loss on the first and second copy


@torch.no_grad()
def induction_probe(model: torch.nn.Module, pool: Sequence[int], *, length: int = 25,
                    sequences: int = 32, seed: int = 0, bos_id: int | None = None
                    ) -> InductionProbe:
    """Induction and previous-token scores on ``sequences`` sequences of ``length`` random
    tokens from ``pool`` (drawn without replacement where the pool allows), each repeated
    once, after ``bos_id`` when given.

    Induction score (Olsson et al. 2022): the mean attention from each token of the second
    copy to the token right after its earlier occurrence (position ``k + 1`` of the first
    copy for the ``k``-th token of the second). Previous-token score: the mean attention
    from every position to the one before it.
    """
    pool_t = torch.as_tensor(list(pool), dtype=torch.long)
    if len(pool_t) < 2:
        raise RolesError("the vocabulary has too few ordinary tokens for the induction probe")
    g = torch.Generator().manual_seed(seed)
    if len(pool_t) >= length:
        draw = torch.stack([pool_t[torch.randperm(len(pool_t), generator=g)[:length]]
                            for _ in range(sequences)])
    else:
        draw = pool_t[torch.randint(len(pool_t), (sequences, length), generator=g)]
    ids = torch.cat([draw, draw], dim=1)
    off = 0
    if bos_id is not None:
        ids = torch.cat([torch.full((sequences, 1), bos_id), ids], dim=1)
        off = 1
    mask = torch.ones_like(ids)
    T = length
    with eager_attention(model):
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    query = torch.arange(T) + T + off  # k-th token of the second copy
    target = torch.arange(T) + 1 + off  # the token after its first occurrence
    pos = torch.arange(1, ids.shape[1])  # every position that has one before it
    ind, prev = [], []
    for att in out.attentions:
        a = att.double()  # (R, H, n, n)
        ind.append(a[:, :, query, target].mean((0, 2)))
        prev.append(a[:, :, pos, pos - 1].mean((0, 2)))
    base_ind = float((1.0 / (query + 1).double()).mean())
    base_prev = float((1.0 / (pos + 1).double()).mean())
    loss = None
    logits = out.logits
    if logits.dim() == 3 and logits.shape[1] == ids.shape[1]:  # an LM head
        lp = torch.log_softmax(logits.double(), -1)
        nll = -lp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]  # predicts position t + 1
        first = nll[:, off + 0: off + T - 1].mean()  # tokens 2..T of the first copy
        second = nll[:, off + T: off + 2 * T - 1].mean()  # tokens 2..T of the second copy
        loss = (float(first), float(second))
    return InductionProbe(torch.stack(ind).numpy(), torch.stack(prev).numpy(), base_ind,
                          base_prev, loss)


def head_table(means: dict[str, np.ndarray], types: np.ndarray, rules: RoleRules,
               probe: InductionProbe | None = None) -> tuple[HeadRole, ...]:
    """:class:`HeadRole` rows from :func:`measure_heads` (and the induction probe)."""
    from ticketlens.core.units import head_name

    layers, heads = types.shape[:2]
    out = []
    for layer in range(layers):
        for h in range(heads):
            counts = types[layer, h]
            total = counts.sum()
            shares = tuple(float(c / total) if total else math.nan for c in counts)
            pattern = PATTERNS[int(np.argmax(counts))] if total else "n/a"
            row = HeadRole(
                head_name(layer, h), layer, h,
                *(float(means[k][layer, h]) for k in TARGETS),
                float(means["entropy"][layer, h]), float(means["entropy_norm"][layer, h]),
                pattern, shares,
                None if probe is None else float(probe.induction[layer, h]),
                None if probe is None else float(probe.previous_token[layer, h]))
            out.append(_with_roles(row, rules))
    return tuple(out)


def _with_roles(row: HeadRole, rules: RoleRules) -> HeadRole:
    from dataclasses import replace

    return replace(row, roles=assign_roles(row, rules))


def ordinary_tokens(tokenizer: Any, vocab_size: int) -> list[int]:
    """Token ids that are neither special nor punctuation (the induction probe's pool)."""
    tok = getattr(tokenizer, "tok", tokenizer)
    special = {i for t in SPECIAL_TOKENS if (i := tok.token_to_id(t)) is not None}
    added = getattr(tok, "get_added_tokens_decoder", None)
    if added is not None:
        special |= set(added())
    out = []
    for i in range(min(vocab_size, tok.get_vocab_size(with_added_tokens=True))):
        s = tok.id_to_token(i)
        if i not in special and s is not None and not is_punct(s):
            out.append(i)
    return out


def bos_id(tokenizer: Any, first_ids: Sequence[int] = ()) -> int | None:
    """The begin-of-sequence id when the tokenizer puts one first (Llama's ``<s>``)."""
    tok = getattr(tokenizer, "tok", tokenizer)
    for t in BOS_TOKENS:
        i = tok.token_to_id(t)
        if i is not None and (not first_ids or first_ids[0] == i):
            return i
    return None
