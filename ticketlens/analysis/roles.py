"""Head roles: what each attention head looks at, and which kinds of head a ticket keeps.

Measured by :mod:`ticketlens.analysis.role_probe` (torch); this module holds the result types,
the rules that turn measurements into roles, survival by role against chance, the summary over
seeds, and the findings sentences. It needs numpy and scipy only.

Per head, on K dev inputs (every number a mean over all query tokens of all inputs, as Clark
et al. 2019 average): attention to the first token ([CLS], or a decoder's first token: an
attention sink), to [SEP] / end-of-text tokens, to punctuation, to the query's own position
(``same``), to the previous and to the next token; the attention entropy in nats and divided
by the log of the number of keys the query sees. For causal models also Olsson et al.'s
induction score and a previous-token score on repeated random tokens.

**Pattern type** (Kovaleva et al. 2019's five): each attention map (one head, one input) gets
three scores, each the mean over its eligible query rows (rows that see at least
``MIN_KEYS`` keys) of the attention mass *above uniform*, scaled so that uniform attention
scores 0 and all of the row's mass there scores 1, ``(mass - u) / (1 - u)`` with ``u`` the
share of the row's keys in the set:

- ``D`` (diagonal): mass on the keys at distance <= 1 (previous token, itself, next token);
- ``V`` (vertical): mass on the ``VERTICAL_COLUMNS`` key columns that receive the most
  attention over the map, outside that diagonal band;
- ``G`` (block): mass on the keys of the query's own segment (segments are cut after each
  [SEP]); only for inputs with two or more segments, as Kovaleva's block is intra-sentence
  attention in sentence pairs.

Then, in this order: vertical + diagonal when ``V >= MIXED_MIN`` and ``D >= MIXED_MIN`` and
``V + D >= MIXED_SUM``; vertical when ``V >= PURE_MIN``; diagonal when ``D >= PURE_MIN``;
block when ``G >= BLOCK_MIN``; heterogeneous otherwise. A head's type is the type of most of
its maps (ties go to the earlier type in :data:`PATTERNS`); the share of each type is kept.
Kovaleva et al. classified maps with a CNN trained on 400 hand-labelled maps; this rule is
ours, and the thresholds are written here so a reader can disagree with them.

**Roles** used for survival: the head's pattern type, and each of :data:`ATTENTION_ROLES`
whose mean attention is at least ``RoleRules.mostly`` (0.5: "attends mostly to"), ``broad``
when the normalised entropy is at least ``RoleRules.broad``, and for causal models
``induction`` / ``previous_token`` at ``RoleRules.induction`` / ``RoleRules.previous_token``.

**Survival by role**: of the heads alive in the ticket (the head states of
:mod:`ticketlens.core.structure`; a structured ticket's unit masks), how many have the role,
against the count expected if survival ignored roles, ``kept * with_role / heads``: the
hypergeometric distribution, tested with Fisher's exact test (scipy; two-sided, and one-sided
each way), Holm-adjusted over the roles tested in the run.

**Kept weights by role** (what a weight-level ticket, unstructured or N:M, keeps of a head
it never removes whole): each head's kept fraction of its Q, K, V and O weights (with
grouped-query attention the query head's Q rows and O columns and its key/value group's K and
V rows: :func:`ticketlens.core.structure.head_kept_fractions`), weighted by their sizes. Per
role, the mean over the role's heads against the mean over the other heads; the chance level
is random head sets of the same size: a permutation test over heads (the role labels shuffled,
the statistic the difference of the two means, two-sided: ``|d*| >= |d|``), exact over all
splits when there are at most :data:`KEPT_RESAMPLES` of them, else :data:`KEPT_RESAMPLES`
random splits drawn by the result's seed (``p = (1 + hits) / (1 + resamples)``);
Holm-adjusted over the roles. Pruners that compare weights within each output row (Wanda,
N:M patterns) keep exactly the same share of every Q, K and V row, so only O can differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ticketlens.core.errors import AnalysisError
from ticketlens.core.result import Result

PATTERNS = ("vertical", "diagonal", "vertical+diagonal", "block", "heterogeneous")
MIN_KEYS = 4  # a query row counts for the pattern scores when it sees at least this many keys
VERTICAL_COLUMNS = 2  # Kovaleva's vertical stripes: [CLS] and [SEP], or a sink and one more
MIXED_MIN = 0.2  # vertical + diagonal: both scores at least this ...
MIXED_SUM = 0.6  # ... and together at least this
PURE_MIN = 0.5  # vertical or diagonal alone
BLOCK_MIN = 0.5  # block (two or more segments only)

KEPT_RESAMPLES = 9999  # random splits of the kept-fraction permutation test (exact if fewer)

# attention targets measured for every head: field -> what "attends mostly to" it means
ATTENTION_ROLES = ("first", "sep", "punct", "same", "prev", "next")


class RolesError(AnalysisError):
    """Head roles cannot be measured for this run or model (printed as one line)."""


@dataclass(frozen=True)
class RoleRules(Result):
    """Thresholds that turn a head's measurements into roles (recorded with the result)."""

    mostly: float = 0.5  # mean attention to a target: "attends mostly to"
    broad: float = 0.8  # normalised entropy: attends broadly (Clark et al.'s broad heads)
    induction: float = 0.3  # induction score (uniform attention scores ~1/position, < 0.05)
    previous_token: float = 0.5  # previous-token score on repeated random tokens


def kovaleva_type(v: np.ndarray, d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Pattern type index (into :data:`PATTERNS`) of maps with scores ``v``, ``d``, ``g``
    (any shape; ``g`` NaN where the input has one segment; NaN ``v`` marks a map too short
    to classify, returned as -1). The rule of the module docstring."""
    v, d, g = (np.asarray(x, dtype=float) for x in (v, d, g))
    out = np.full(np.broadcast(v, d, g).shape, PATTERNS.index("heterogeneous"), dtype=np.int64)
    block = np.nan_to_num(g, nan=-1.0) >= BLOCK_MIN
    out[block] = PATTERNS.index("block")
    out[d >= PURE_MIN] = PATTERNS.index("diagonal")
    out[v >= PURE_MIN] = PATTERNS.index("vertical")
    mixed = (v >= MIXED_MIN) & (d >= MIXED_MIN) & (v + d >= MIXED_SUM)
    out[mixed] = PATTERNS.index("vertical+diagonal")
    out[np.isnan(v) | np.isnan(d)] = -1
    return out


@dataclass(frozen=True)
class HeadRole(Result):
    """One head's measurements (means over the K inputs' query tokens) and roles."""

    unit: str
    layer: int
    head: int
    first: float  # attention to position 0 ([CLS], BOS or a decoder's first token)
    sep: float  # to [SEP] / end-of-text tokens (NaN when no input has one)
    punct: float  # to punctuation tokens
    same: float  # to the query's own position
    prev: float  # to the previous token
    next: float  # to the next token (0 in causal models)
    entropy: float  # nats
    entropy_norm: float  # entropy / log(keys seen), rows with >= 2 keys
    pattern: str  # the type of most maps (``n/a`` when no map was long enough)
    pattern_shares: tuple[float, ...]  # share of the maps of each of PATTERNS
    induction: float | None = None  # causal models: Olsson et al.'s induction score
    previous_token: float | None = None  # causal models: on repeated random tokens
    roles: tuple[str, ...] = ()

    def _data(self) -> Mapping[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["pattern_shares"] = dict(zip(PATTERNS, self.pattern_shares, strict=True))
        return d


def assign_roles(h: HeadRole, rules: RoleRules) -> tuple[str, ...]:
    """The roles of a measured head under ``rules`` (its pattern type first)."""
    roles = [h.pattern] if h.pattern in PATTERNS else []
    roles += [r for r in ATTENTION_ROLES if _ge(getattr(h, r), rules.mostly)]
    if _ge(h.entropy_norm, rules.broad):
        roles.append("broad")
    if _ge(h.induction, rules.induction):
        roles.append("induction")
    if _ge(h.previous_token, rules.previous_token):
        roles.append("previous_token")
    return tuple(roles)


def _ge(x: float | None, t: float) -> bool:
    return x is not None and not math.isnan(x) and x >= t


def role_label(role: str, causal: bool = False) -> str:
    """What a head with ``role`` does, as the predicate of a sentence."""
    return {
        "vertical": "have a vertical pattern",
        "diagonal": "have a diagonal pattern",
        "vertical+diagonal": "have a vertical + diagonal pattern",
        "block": "have a block pattern",
        "heterogeneous": "have a heterogeneous pattern",
        "first": ("attend mostly to the first token (an attention sink)" if causal
                  else "attend mostly to [CLS]"),
        "sep": "attend mostly to end-of-text" if causal else "attend mostly to [SEP]",
        "punct": "attend mostly to punctuation",
        "same": "attend mostly to the token itself",
        "prev": "attend mostly to the previous token",
        "next": "attend mostly to the next token",
        "broad": "attend broadly (normalised entropy at or above the threshold)",
        "induction": "are induction heads",
        "previous_token": "are previous-token heads",
    }.get(role, role)


@dataclass(frozen=True)
class RoleSurvival(Result):
    """Survival of the heads with one role (the dense model's roles) in the ticket."""

    role: str
    heads: int  # heads with the role
    kept: int  # of them, alive in the ticket
    total: int  # all heads
    total_kept: int  # all heads alive in the ticket
    expected: float  # role heads expected among the kept: total_kept * heads / total
    p_value: float  # Fisher's exact test (the hypergeometric), two-sided
    p_greater: float  # one-sided: more kept than chance
    p_less: float  # one-sided: fewer kept than chance
    p_adjusted: float = math.nan  # p_value, Holm-adjusted over the roles tested in the run
    kept_fraction: float = math.nan  # mean kept fraction of the role heads' weights
    kept_fraction_others: float = math.nan  # ... of the other heads
    p_kept_fraction: float = math.nan  # permutation test over heads, two-sided
    p_kept_fraction_adjusted: float = math.nan  # ... Holm-adjusted over the roles


def kept_fraction_test(values: np.ndarray, has: np.ndarray, *,
                       resamples: int = KEPT_RESAMPLES, seed: int = 0) -> float:
    """Two-sided p-value that the heads marked by ``has`` keep a different mean fraction of
    their weights (``values``, one per head, no NaN) than the others: the permutation test of
    the module docstring (exact when ``C(n, k) <= resamples``). NaN when either group is
    empty or every value is the same."""
    from itertools import combinations

    v = np.asarray(values, dtype=float)
    has = np.asarray(has, dtype=bool)
    n, k = len(v), int(has.sum())
    if k == 0 or k == n or np.ptp(v) == 0:
        return math.nan
    total = v.sum()

    def diff(sums: np.ndarray) -> np.ndarray:  # mean of the k minus mean of the rest
        return sums / k - (total - sums) / (n - k)

    observed = abs(float(diff(np.array(v[has].sum()))))
    tol = 1e-12 * max(1.0, observed)
    if math.comb(n, k) <= resamples:
        sums = np.array([v[list(c)].sum() for c in combinations(range(n), k)])
        return float(np.mean(np.abs(diff(sums)) >= observed - tol))
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, resamples, 1000):  # chunks: (1000, n) at a time
        m = min(1000, resamples - start)
        pick = np.argsort(rng.random((m, n)), axis=1)[:, :k]
        hits += int((np.abs(diff(v[pick].sum(axis=1))) >= observed - tol).sum())
    return (1 + hits) / (1 + resamples)


def survival_by_role(heads: Sequence[HeadRole], alive: np.ndarray, kept: np.ndarray, *,
                     seed: int = 0) -> tuple[RoleSurvival, ...]:
    """For each role held by at least one head: kept heads with the role against chance.
    ``alive`` (layers, heads) bool; ``kept`` (layers, heads) kept fraction of each head's
    weights (NaN where unknown), compared by :func:`kept_fraction_test` (``seed`` draws its
    random splits)."""
    from scipy import stats

    alive = np.asarray(alive, dtype=bool)
    kept = np.asarray(kept, dtype=float)
    n_total, n_kept = len(heads), int(sum(alive[h.layer, h.head] for h in heads))
    roles = list(dict.fromkeys(r for h in heads for r in _order(h.roles)))
    rows = []
    for role in sorted(roles, key=_role_rank):
        has = np.array([role in h.roles for h in heads])
        on = np.array([bool(alive[h.layer, h.head]) for h in heads])
        k, n = int((has & on).sum()), int(has.sum())
        table = [[k, n - k], [n_kept - k, n_total - n - (n_kept - k)]]
        p2 = float(stats.fisher_exact(table).pvalue)
        pg = float(stats.fisher_exact(table, alternative="greater").pvalue)
        pl = float(stats.fisher_exact(table, alternative="less").pvalue)
        kf = np.array([kept[h.layer, h.head] for h in heads])
        known = ~np.isnan(kf)
        a, b = kf[has & known], kf[~has & known]
        pk = kept_fraction_test(kf[known], has[known], seed=seed)
        rows.append(RoleSurvival(role, n, k, n_total, n_kept, n_kept * n / n_total, p2, pg,
                                 pl, math.nan, float(a.mean()) if len(a) else math.nan,
                                 float(b.mean()) if len(b) else math.nan, pk))
    adjusted = holm([r.p_value for r in rows])
    tested = [i for i, r in enumerate(rows) if not math.isnan(r.p_kept_fraction)]
    kept_adj = dict(zip(tested, holm([rows[i].p_kept_fraction for i in tested]), strict=True))
    return tuple(RoleSurvival(**{**_fields(r), "p_adjusted": p,
                                 "p_kept_fraction_adjusted": kept_adj.get(i, math.nan)})
                 for i, (r, p) in enumerate(zip(rows, adjusted, strict=True)))


def holm(p: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (the same order as ``p``)."""
    order = np.argsort(p, kind="stable")
    m = len(p)
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        out[i] = running
    return out


def _role_rank(role: str) -> int:
    known = (*PATTERNS, *ATTENTION_ROLES, "broad", "induction", "previous_token")
    return known.index(role) if role in known else len(known)


def _order(roles: Sequence[str]) -> list[str]:
    return sorted(roles, key=_role_rank)


@dataclass(frozen=True)
class HeadRolesResult(Result):
    """Roles of every head of the dense model and the ticket, and survival by role."""

    run: str
    round: int
    model_type: str
    causal: bool
    structured: bool  # the run's ticket is made of unit masks
    examples: int  # dev inputs measured
    seed: int  # drew them (and the random tokens of the induction probe)
    indices: tuple[int, ...]  # their positions in the dev split
    num_layers: int
    num_heads: int
    rules: RoleRules
    dense: tuple[HeadRole, ...]
    ticket: tuple[HeadRole, ...] | None  # the round's trained weights, when the run has them
    alive: np.ndarray  # (layers, heads) bool: alive in the round's mask
    kept: np.ndarray  # (layers, heads) kept fraction of each head's weights
    survival: tuple[RoleSurvival, ...]
    induction_baseline: float | None = None  # the induction score of uniform attention
    previous_token_baseline: float | None = None  # ... and the previous-token score
    repeat_loss: tuple[float, float] | None = None  # LM loss, first and second copy (nats)
    alpha: float = 0.05
    sparsity: float = math.nan
    notes: tuple[str, ...] = ()
    task: str = ""  # the run's task and model: over seeds, runs are grouped by both
    model: str = ""

    def heads(self, which: str = "dense") -> tuple[HeadRole, ...]:
        out = self.dense if which == "dense" else self.ticket
        if out is None:
            raise RolesError(f"{self.run}: round {self.round} has no trained weights stored; "
                             "only the dense model's roles were measured")
        return out

    def grid(self, field: str, which: str = "dense") -> np.ndarray:
        """(layers, heads) of a numeric :class:`HeadRole` field (NaN where None)."""
        out = np.full((self.num_layers, self.num_heads), np.nan)
        for h in self.heads(which):
            v = getattr(h, field)
            out[h.layer, h.head] = math.nan if v is None else float(v)
        return out

    def pattern_grid(self, which: str = "dense") -> np.ndarray:
        """(layers, heads) index into :data:`PATTERNS` (-1 where no type)."""
        out = np.full((self.num_layers, self.num_heads), -1, dtype=np.int64)
        for h in self.heads(which):
            out[h.layer, h.head] = PATTERNS.index(h.pattern) if h.pattern in PATTERNS else -1
        return out

    def head(self, unit: str, which: str = "dense") -> HeadRole:
        try:
            return next(h for h in self.heads(which) if h.unit == unit)
        except StopIteration:
            raise RolesError(f"no head {unit!r} (the model has {self.num_layers} layers of "
                             f"{self.num_heads} heads)") from None

    def with_role(self, role: str, which: str = "dense") -> list[str]:
        return [h.unit for h in self.heads(which) if role in h.roles]

    def pattern_kept(self) -> tuple[int, int]:
        """(surviving heads whose ticket pattern type is their dense one, surviving heads
        compared); (0, 0) without the ticket's roles."""
        if self.ticket is None:
            return 0, 0
        same = n = 0
        for d, t in zip(self.dense, self.ticket, strict=True):
            if self.alive[d.layer, d.head] and d.pattern in PATTERNS:
                n += 1
                same += int(d.pattern == t.pattern)
        return same, n

    def findings(self) -> tuple[str, ...]:
        return role_findings(self)

    def _data(self) -> Mapping[str, Any]:
        return {
            "run": self.run, "round": self.round, "model_type": self.model_type,
            "causal": self.causal, "structured": self.structured, "examples": self.examples,
            "seed": self.seed, "indices": list(self.indices), "num_layers": self.num_layers,
            "num_heads": self.num_heads, "rules": self.rules.to_dict(),
            "thresholds": pattern_thresholds(), "sparsity": self.sparsity,
            "dense": [h.to_dict() for h in self.dense],
            "ticket": None if self.ticket is None else [h.to_dict() for h in self.ticket],
            "alive": self.alive.tolist(), "kept": self.kept.tolist(),
            "kept_fraction_test": {"test": "permutation over heads, difference of means, "
                                   "two-sided; Holm over the roles",
                                   "resamples": KEPT_RESAMPLES, "seed": self.seed},
            "survival": [s.to_dict() for s in self.survival],
            "induction_baseline": self.induction_baseline,
            "previous_token_baseline": self.previous_token_baseline,
            "repeat_loss": None if self.repeat_loss is None else list(self.repeat_loss),
            "alpha": self.alpha, "notes": list(self.notes), "task": self.task,
            "model": self.model,
            "findings": list(self.findings()),
        }


    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HeadRolesResult:
        """The result from its ``to_dict()`` (``analysis/roles.json``); ``None`` numbers come
        back as NaN."""
        def head(h: Mapping[str, Any]) -> HeadRole:
            shares = h.get("pattern_shares") or {}
            return HeadRole(
                str(h["unit"]), int(h["layer"]), int(h["head"]),
                *(_num(h.get(k)) for k in (*ATTENTION_ROLES, "entropy", "entropy_norm")),
                str(h["pattern"]), tuple(_num(shares.get(p)) for p in PATTERNS),
                None if h.get("induction") is None else float(h["induction"]),
                None if h.get("previous_token") is None else float(h["previous_token"]),
                tuple(str(r) for r in h.get("roles", ())))

        # a file written before the permutation test holds Mann-Whitney p-values under
        # p_kept_fraction: not read as the permutation test's (said in the notes)
        old = "kept_fraction_test" not in d and any(
            x.get("p_kept_fraction") is not None for x in d["survival"])
        gone = {"p_kept_fraction", "p_kept_fraction_adjusted"} if old else set()

        def surv(x: Mapping[str, Any]) -> RoleSurvival:
            return RoleSurvival(str(x["role"]), *(int(x[k]) for k in (
                "heads", "kept", "total", "total_kept")), *(
                math.nan if f.name in gone else _num(x.get(f.name))
                for f in fields(RoleSurvival)[5:]))

        loss = d.get("repeat_loss")
        return cls(
            str(d["run"]), int(d["round"]), str(d["model_type"]), bool(d["causal"]),
            bool(d["structured"]), int(d["examples"]), int(d["seed"]),
            tuple(int(i) for i in d.get("indices", ())), int(d["num_layers"]),
            int(d["num_heads"]), RoleRules(**{k: float(v) for k, v in d["rules"].items()}),
            tuple(head(h) for h in d["dense"]),
            None if d.get("ticket") is None else tuple(head(h) for h in d["ticket"]),
            np.asarray(d["alive"], dtype=bool),
            np.asarray([[_num(v) for v in row] for row in d["kept"]], dtype=float),
            tuple(surv(x) for x in d["survival"]),
            d.get("induction_baseline"), d.get("previous_token_baseline"),
            None if loss is None else (float(loss[0]), float(loss[1])),
            float(d.get("alpha", 0.05)), _num(d.get("sparsity")),
            tuple(str(n) for n in d.get("notes", ())) + ((OLD_KEPT_TEST,) if old else ()),
            str(d.get("task", "")),
            str(d.get("model", "")))


OLD_KEPT_TEST = ("written before the kept-weights permutation test: its Mann-Whitney "
                 "p-values are not shown (run `ticketlens roles --save` again)")


def stored_roles(run: Any) -> HeadRolesResult | None:
    """What ``ticketlens roles --save`` stored in ``run`` (``analysis/roles.json``), or None;
    an unreadable file raises :class:`~ticketlens.core.errors.RunFormatError`."""
    import json

    from ticketlens.core.errors import RunFormatError

    path = run.paths.roles
    if not path.is_file():
        return None
    try:
        return HeadRolesResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise RunFormatError(f"{path}: unreadable head roles ({exc})") from None


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def pattern_thresholds() -> dict[str, float]:
    """The pattern rule's constants (recorded with every result)."""
    return {"min_keys": MIN_KEYS, "vertical_columns": VERTICAL_COLUMNS,
            "mixed_min": MIXED_MIN, "mixed_sum": MIXED_SUM, "pure_min": PURE_MIN,
            "block_min": BLOCK_MIN}


# ----------------------------------------------------------------------------- over seeds
@dataclass(frozen=True)
class RoleOverSeeds(Result):
    """One role over the runs of a sweep. The test pools the runs: the number of surviving
    heads with the role, summed over runs, against its exact distribution when every run's
    count is its own hypergeometric (the convolution of the runs' distributions), so a role
    held by one head a run weighs as little as it should. The share kept per run, against the
    share of all heads kept, is described by its mean and confidence interval over runs."""

    role: str
    runs: int  # runs where some head has the role
    heads: int  # role heads, summed over runs
    kept: int  # of them, surviving
    expected: float  # the sum of the runs' hypergeometric means
    p_value: float  # pooled exact test, two-sided (twice the smaller tail, at most 1)
    p_greater: float
    p_less: float
    p_adjusted: float  # Holm over the roles
    rate: Any  # Estimate: kept / heads with the role, per run (interval cut to [0, 1])
    chance: Any  # Estimate: total_kept / total, per run (interval cut to [0, 1])
    difference: Any  # Estimate: rate - chance, per run (interval cut to [-1, 1])
    enriched: int  # runs where the role is kept more than chance (Holm-adjusted p < alpha)
    depleted: int  # ... less than chance


@dataclass(frozen=True)
class RolesOverSeedsResult(Result):
    """:class:`HeadRolesResult` of every run and survival by role over them."""

    results: tuple[HeadRolesResult, ...]
    roles: tuple[RoleOverSeeds, ...]
    confidence: float = 0.95
    alpha: float = 0.05
    causal: bool = False

    def findings(self) -> tuple[str, ...]:
        return role_findings(self)

    def _data(self) -> Mapping[str, Any]:
        return {"confidence": self.confidence, "alpha": self.alpha, "causal": self.causal,
                "roles": self.roles, "runs": self.results, "findings": self.findings()}


def roles_over_seeds(results: Sequence[HeadRolesResult], *, confidence: float = 0.95
                     ) -> RolesOverSeedsResult:
    """Survival by role over the runs of a sweep (each with its own dense roles)."""

    if not results:
        raise RolesError("no runs to summarise")
    alpha = results[0].alpha
    roles = sorted({s.role for r in results for s in r.survival}, key=_role_rank)
    rows = []
    for role in roles:
        found = [s for r in results for s in r.survival if s.role == role]
        rate = [s.kept / s.heads for s in found]
        chance = [s.total_kept / s.total for s in found]
        kept = sum(s.kept for s in found)
        pg, pl = pooled_tails(found, kept)
        rows.append(RoleOverSeeds(
            role, len(found), sum(s.heads for s in found), kept,
            float(sum(s.expected for s in found)), min(1.0, 2 * min(pg, pl)), pg, pl,
            math.nan, _within(rate, confidence, 0.0, 1.0),
            _within(chance, confidence, 0.0, 1.0),
            _within([a - b for a, b in zip(rate, chance, strict=True)], confidence, -1.0, 1.0),
            sum(s.p_adjusted < alpha and s.kept > s.expected for s in found),
            sum(s.p_adjusted < alpha and s.kept < s.expected for s in found)))
    adjusted = holm([r.p_value for r in rows])
    rows = [RoleOverSeeds(**{**_fields(r), "p_adjusted": p})
            for r, p in zip(rows, adjusted, strict=True)]
    return RolesOverSeedsResult(tuple(results), tuple(rows), confidence, alpha,
                                any(r.causal for r in results))


def _within(values: Sequence[float], confidence: float, lo: float, hi: float) -> Any:
    """The Student-t interval of ``values`` over runs cut to ``[lo, hi]``, the range its
    quantity can take (a share kept is in [0, 1], a difference of two shares in [-1, 1]): with
    3 runs the t interval of a spread-out share reaches past it ("-126.8% to +160.1%"). When
    every run gives the same value (e.g. 1 of 2 role heads kept in each) the t interval has
    zero width, which is no confidence statement: it is undefined (NaN, shown n/a)."""
    from dataclasses import replace

    from ticketlens.analysis.sweep import estimate

    e = estimate(values, confidence)
    if math.isnan(e.low):
        return e
    if len(values) > 1 and max(values) - min(values) < 1e-12:
        return replace(e, low=math.nan, high=math.nan)
    return replace(e, low=max(lo, e.low), high=min(hi, e.high))


def roles_by_group(results: Sequence[HeadRolesResult], *, confidence: float = 0.95
                   ) -> list[tuple[str, str, RolesOverSeedsResult]]:
    """``(task, model, summary over its runs)`` for every task and model with two or more
    runs (seeds of one task are pooled, different tasks or models never)."""
    groups: dict[tuple[str, str], list[HeadRolesResult]] = {}
    for r in results:
        groups.setdefault((r.task, r.model), []).append(r)
    return [(task, model, roles_over_seeds(rs, confidence=confidence))
            for (task, model), rs in groups.items() if len(rs) > 1]


def pooled_tails(found: Sequence[RoleSurvival], kept: int) -> tuple[float, float]:
    """``(P(S >= kept), P(S <= kept))`` for ``S`` the sum over runs of independent
    hypergeometric counts (scipy's pmf of each run, convolved)."""
    from scipy import stats

    pmf = np.ones(1)
    for s in found:
        x = np.arange(s.heads + 1)
        pmf = np.convolve(pmf, stats.hypergeom.pmf(x, s.total, s.heads, s.total_kept))
    return float(min(1.0, pmf[kept:].sum())), float(min(1.0, pmf[:kept + 1].sum()))


# ----------------------------------------------------------------------------- findings
def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def role_findings(result: HeadRolesResult | RolesOverSeedsResult) -> tuple[str, ...]:
    """Plain sentences, each with its number and its chance level; a role whose test does
    not clear ``alpha`` (after Holm's adjustment) is stated as not found."""
    if isinstance(result, RolesOverSeedsResult):
        return _sweep_findings(result)
    r = result
    out: list[str] = []
    n_kept, n_total = int(r.alive.sum()), r.alive.size
    if r.causal and r.dense and r.dense[0].induction is not None:
        out += _causal_findings(r)
    if n_kept == n_total:
        out.append(f"All {n_total} heads survive in round {r.round}: survival cannot depend "
                   "on the role (no head is dead); the kept weight fractions are compared "
                   "instead.")
    elif n_kept == 0:
        out.append(f"No head survives in round {r.round}: survival by role is undefined.")
    else:
        for s in r.survival:
            label = role_label(s.role, r.causal)
            base = (f"{s.kept} of the {s.total_kept} surviving heads {label} "
                    f"({s.heads} of {s.total} in the dense model); {s.expected:.1f} expected "
                    f"by chance, {_p(s.p_value)}")
            if s.p_adjusted < r.alpha:
                more = "more" if s.kept > s.expected else "fewer"
                out.append(f"{base}: {more} than chance (Holm-adjusted {_p(s.p_adjusted)}).")
            else:
                out.append(f"{base}: no difference from chance found (Holm-adjusted "
                           f"{_p(s.p_adjusted)} >= {r.alpha:g}).")
    if n_kept == n_total or r.structured is False:
        out += _kept_fraction_findings(r, all_alive=n_kept == n_total)
    same, n = r.pattern_kept()
    if n:
        out.append(f"The ticket keeps the dense pattern type of {same} of its {n} surviving "
                   f"heads ({same / n:.0%}).")
    return tuple(out)


def _kept_fraction_findings(r: HeadRolesResult, *, all_alive: bool) -> list[str]:
    """Kept weights of each role's heads against the other heads' (the permutation test);
    a role whose Holm-adjusted p does not clear ``alpha`` is stated as not found (when every
    head survives; otherwise only the differences are said)."""
    known = r.kept[~np.isnan(r.kept)]
    if known.size and np.ptp(known) == 0:
        return [f"Every head keeps the same share of its weights ({known[0]:.1%}): the "
                "ticket cannot keep one role's heads more than another's (a rule that prunes "
                "every row, or every group of M inputs, alike fixes each head's share)."]
    out = []
    for s in r.survival:
        if math.isnan(s.p_kept_fraction) or s.heads == s.total:
            continue
        label = role_label(s.role, r.causal)
        diff = 100 * (s.kept_fraction - s.kept_fraction_others)
        base = (f"Heads that {label} keep {s.kept_fraction:.1%} of their weights, the other "
                f"heads {s.kept_fraction_others:.1%} ({diff:+.1f} points; {_p(s.p_kept_fraction)}"
                f", permutation test over heads, Holm-adjusted {_p(s.p_kept_fraction_adjusted)})")
        if s.p_kept_fraction_adjusted < r.alpha:
            out.append(base + f": {'more' if diff > 0 else 'fewer'} than chance.")
        elif all_alive:
            out.append(base + ": no difference from chance found.")
    return out


def _causal_findings(r: HeadRolesResult) -> list[str]:
    out = []
    for role, field_, base in (("induction", "induction", r.induction_baseline),
                               ("previous_token", "previous_token",
                                r.previous_token_baseline)):
        heads = [h for h in r.dense if role in h.roles]
        thr = getattr(r.rules, role)
        chance = "" if base is None else f"; uniform attention scores {base:.3f}"
        if heads:
            best = max(heads, key=lambda h: getattr(h, field_))
            names = ", ".join(h.unit for h in heads[:6]) + (" ..." if len(heads) > 6 else "")
            kept = sum(bool(r.alive[h.layer, h.head]) for h in heads)
            out.append(f"{len(heads)} of {len(r.dense)} heads {role_label(role, True)} "
                       f"(score >= {thr:g}: {names}; best {best.unit} "
                       f"{getattr(best, field_):.2f}{chance}); {kept} of them survive.")
        else:
            top = max(r.dense, key=lambda h: getattr(h, field_) or 0.0)
            one = {"induction": "is an induction head",
                   "previous_token": "is a previous-token head"}[role]
            out.append(f"No head {one} "
                       f"(score >= {thr:g}): not found (highest {top.unit} "
                       f"{getattr(top, field_):.2f}{chance}).")
    if r.repeat_loss is not None:
        a, b = r.repeat_loss
        way = "falls" if b < a else "does not fall"
        out.append(f"The LM loss on repeated random tokens {way}: {a:.2f} nats on the first "
                   f"copy, {b:.2f} on the second (in-context copying lowers the second).")
    return out


def _sweep_findings(s: RolesOverSeedsResult) -> tuple[str, ...]:
    out = []
    level = f"{s.confidence:.0%} CI"
    for r in s.roles:
        d = r.difference
        label = role_label(r.role, s.causal)
        cut = " cut to the possible -100% to +100%" if -1.0 in (d.low, d.high) or \
            1.0 in (d.low, d.high) else ""
        interval = f", {level} {d.low:+.1%} to {d.high:+.1%}{cut}" if not math.isnan(d.low) \
            else (f", no {level}: the same in every run" if r.runs > 1 else "")
        base = (f"Over {r.runs} runs, {r.kept} of the {r.heads} heads that {label} survive; "
                f"{r.expected:.1f} expected by chance, {_p(r.p_value)} (pooled exact test; "
                f"per run {r.rate.mean:.0%} kept against {r.chance.mean:.0%} of all heads, "
                f"difference {d.mean:+.1%}{interval})")
        if r.p_adjusted < s.alpha:
            way = "more" if r.kept > r.expected else "fewer"
            out.append(base + f": {way} than chance (Holm-adjusted {_p(r.p_adjusted)}; "
                       f"{r.enriched + r.depleted} of {r.runs} runs significant on their "
                       "own).")
        else:
            out.append(base + f": no difference from chance found (Holm-adjusted "
                       f"{_p(r.p_adjusted)} >= {s.alpha:g}).")
    return tuple(out)


def _fields(x: Any) -> dict[str, Any]:
    return {f.name: getattr(x, f.name) for f in fields(x)}
