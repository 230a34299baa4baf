"""``tl.head_roles``: the roles of every head of a run's dense model and ticket, and which
roles the ticket keeps against chance (the measurements of
:mod:`ticketlens.analysis.role_probe`, the rules and statistics of
:mod:`ticketlens.analysis.roles`).

The inputs are ``examples`` dev examples drawn without replacement by ``seed``
(``numpy.random.default_rng(seed)``), recorded by index in the result; the induction probe's
random tokens come from the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ticketlens.analysis.roles import (
    HeadRole,
    HeadRolesResult,
    RoleRules,
    RolesError,
    RolesOverSeedsResult,
    roles_over_seeds,
    survival_by_role,
)

BATCH = 32
PROBE_LENGTH = 25  # random tokens per copy in the induction probe (TransformerLens uses 50)
PROBE_SEQUENCES = 32


def _batches(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None,
             max_length: int) -> list[dict]:
    from ticketlens.data.batching import TensorData, collate, eval_batches

    data = TensorData(tokenizer.encode(list(texts), None if pairs is None else list(pairs),
                                       max_length), [0] * len(texts))
    return [collate(data, idx, tokenizer.pad_id) for idx in eval_batches(data, BATCH)]


def model_roles(model: Any, tokenizer: Any, texts: Sequence[str],
                pairs: Sequence[str] | None = None, *, max_length: int = 128,
                rules: RoleRules | None = None, seed: int = 0,
                probe: bool | None = None) -> tuple[tuple[HeadRole, ...], Any]:
    """Roles of every head of an HF ``model`` (any of the four families) on ``texts`` (and
    ``pairs``), tokenized by ``tokenizer`` (a :class:`~ticketlens.data.tokenizer.TextTokenizer`).
    Causal models (or ``probe=True``) also get the induction probe. Returns ``(heads, probe
    result or None)``."""
    from ticketlens.analysis import role_probe as P

    rules = rules or RoleRules()
    if not texts:
        raise RolesError("no inputs to measure head roles on")
    vocab = int(model.get_input_embeddings().weight.shape[0])
    kinds = P.TokenKinds.of(tokenizer, vocab)
    causal = P.is_causal(model)
    batches = _batches(tokenizer, texts, pairs, max_length)
    means, types = P.measure_heads(model, batches, kinds, causal=causal)
    found = None
    if causal if probe is None else probe:
        limit = int(getattr(model.config, "max_position_embeddings", None)
                    or getattr(model.config, "n_positions", 2 * PROBE_LENGTH + 1))
        length = max(2, min(PROBE_LENGTH, (min(limit, max_length) - 1) // 2))
        first = batches[0]["input_ids"][0].tolist()
        found = P.induction_probe(model, P.ordinary_tokens(tokenizer, vocab), length=length,
                                  sequences=PROBE_SEQUENCES, seed=seed,
                                  bos_id=P.bos_id(tokenizer, first))
    return P.head_table(means, types, rules, found), found


def draw_examples(n_dev: int, examples: int, seed: int) -> tuple[int, ...]:
    """``examples`` dev positions drawn without replacement by ``seed`` (sorted)."""
    if examples < 1:
        raise RolesError(f"--examples must be at least 1, got {examples}")
    k = min(examples, n_dev)
    return tuple(int(i) for i in np.sort(np.random.default_rng(seed).choice(n_dev, k,
                                                                             replace=False)))


def head_roles(run: Any, *, round: int | None = None, examples: int = 256, seed: int = 0,
               rules: RoleRules | None = None, alpha: float = 0.05) -> HeadRolesResult:
    """Roles of every head of ``run``'s dense model and of its round ``round`` (default the
    ticket) on ``examples`` dev inputs, and survival by role against chance. ``run`` is a
    :class:`~ticketlens.core.run.Run` or a path (any one-run input of
    :func:`ticketlens.analysis.inputs.as_inputs`); it needs the weights `find` stores."""
    from ticketlens.analysis.inputs import one_run
    from ticketlens.analysis.survival import survival
    from ticketlens.core.config import FindConfig
    from ticketlens.data.tasks import load_task
    from ticketlens.data.tokenizer import TextTokenizer
    from ticketlens.models.load import model_from_run

    r = one_run(run, what="head_roles", needs="the weights `find` stores")
    rules = rules or RoleRules()
    if not r.has_weights:
        raise RolesError(f"{r.path}: this run has no weights (imported masks?); head roles "
                         "need a run made by `ticketlens find`")
    ri = r.round_index(round)
    cfg = FindConfig.from_dict(dict(r.manifest.config))
    task = load_task(cfg.data, r.manifest.model.objective)
    idx = draw_examples(len(task.dev), examples, seed)
    dev = task.dev.take(list(idx))
    tok = TextTokenizer.from_file(r.paths.tokenizer)
    notes = []
    dense = model_from_run(r, "dense")
    d_roles, d_probe = model_roles(dense, tok, dev.texts, dev.pairs,
                                   max_length=cfg.data.max_length, rules=rules, seed=seed)
    t_roles = None
    if ri == r.ticket_round and ri != 0:
        ticket = model_from_run(r, "ticket")
        t_roles, _ = model_roles(ticket, tok, dev.texts, dev.pairs,
                                 max_length=cfg.data.max_length, rules=rules, seed=seed)
    elif ri != 0:
        notes.append(f"round {ri}'s trained weights are not stored (only the ticket's): "
                     "survival uses the dense roles and the round's mask")
    surv = survival(r, round=ri)
    alive = np.asarray(r.units(ri).head, dtype=bool)
    kept = surv.head_grid("kept")
    a = r.anatomy
    return HeadRolesResult(
        str(r.path), ri, str(r.manifest.model.config.get("model_type", a.family)),
        a.family in ("gpt2", "llama"), r.structured or bool(
            next(x for x in r.rounds if x.index == ri).units),
        len(idx), seed, idx, a.num_layers, a.num_heads, rules, d_roles, t_roles, alive, kept,
        survival_by_role(d_roles, alive, kept, seed=seed),
        None if d_probe is None else d_probe.induction_baseline,
        None if d_probe is None else d_probe.previous_token_baseline,
        None if d_probe is None else d_probe.repeat_loss, alpha, float(surv.sparsity),
        tuple(notes), r.task, r.model_name)


def head_roles_over(runs: Any, *, round: int | None = None,
                    examples: int = 256, seed: int = 0, rules: RoleRules | None = None,
                    alpha: float = 0.05, confidence: float = 0.95) -> RolesOverSeedsResult:
    """:func:`head_roles` of every run (a sweep folder, or runs), and survival by role over
    them: per role, the share kept against chance as mean and CI over runs."""
    from ticketlens.analysis.inputs import as_inputs

    results = [head_roles(x, round=round, examples=examples, seed=seed, rules=rules,
                          alpha=alpha) for x in as_inputs(runs, what="head_roles_over")]
    return roles_over_seeds(results, confidence=confidence)
