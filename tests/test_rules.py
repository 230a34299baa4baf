"""The search's decisions and the verdict as pure functions of typed records (no search
object, no training): stopping, ticket choice, weights kept, verdict."""

from __future__ import annotations

import dataclasses

from ticketlens.core.anatomy import Anatomy
from ticketlens.core.record import ArmRecord, Manifest, RoundRecord, TaskRecord
from ticketlens.pruning import rules
from ticketlens.pruning.verdict import verdict

ANATOMY = Anatomy("bert", 1, 1, 1, 4, 4, 16)


def manifest(dense: float, ticket: float, controls: dict[str, float],
             chance: float | None = None, metric: str = "accuracy") -> Manifest:
    rounds = (RoundRecord(index=0, sparsity=0.0, metrics={metric: dense}),
              RoundRecord(index=1, sparsity=0.36, metrics={metric: ticket}))
    return Manifest(anatomy=ANATOMY, rounds=rounds, ticket_round=1,
                    task=TaskRecord(name="t", metric=metric, chance=chance),
                    controls={c: ArmRecord(sparsity=0.36, metrics={metric: v})
                              for c, v in controls.items()})


def rounds(accuracies: list[float]) -> tuple[RoundRecord, ...]:
    return tuple(RoundRecord(index=i, sparsity=0.2 * i, metrics={"accuracy": a})
                 for i, a in enumerate(accuracies))


def test_stop_on_drop_picks_the_last_matching_round():
    rs = rounds([0.90, 0.905, 0.895, 0.85])
    # round 3 fell more than 1 point below dense: stop, even with weights left to prune
    assert rules.finished(rs, "accuracy", 0.01, stop_on_drop=True, amount_next=0.2)
    assert not rules.finished(rs, "accuracy", 0.01, stop_on_drop=False, amount_next=0.2)
    assert rules.finished(rs, "accuracy", 0.01, stop_on_drop=False, amount_next=0.0)
    assert rules.last_matching(rs, "accuracy", 0.01) == 2
    assert rules.ticket_round(rs, "accuracy", 0.01, stop_on_drop=True) == 2
    assert rules.ticket_round(rs, "accuracy", 0.01, stop_on_drop=False) == 3
    none_match = rounds([0.90, 0.70, 0.80])
    assert rules.last_matching(none_match, "accuracy", 0.01) is None
    assert rules.ticket_round(none_match, "accuracy", 0.01, stop_on_drop=True) == 1


def test_weights_kept_for_resume_and_ticket_choice():
    rs = rounds([0.90, 0.905, 0.895, 0.85, 0.80, 0.70])
    # dense, the last two, and the last matching round (2) with the one before it
    assert rules.needed_weights(rs, "accuracy", 0.01) == {0, 5, 4, 2, 1}


def test_perplexity_matches_with_a_relative_tolerance():
    rs = tuple(RoundRecord(index=i, sparsity=0.0, metrics={"perplexity": p})
               for i, p in enumerate([10.0, 10.09, 10.2]))
    assert rules.last_matching(rs, "perplexity", 0.01) == 1  # 10.09 <= 10 * 1.01


def test_next_amount_lands_on_the_target():
    assert rules.next_amount(1000, 1000, 0.2, 0.8) == 0.2
    assert rules.next_amount(209, 1000, 0.2, 0.8) == (209 - 200) / 209
    assert rules.next_amount(200, 1000, 0.2, 0.8) == 0.0


def test_no_winning_ticket_when_dense_did_not_learn():
    """A dense model at the majority-class rate makes every comparison meaningless: the
    verdict refuses, whatever the ticket and controls score (seen on SST-2 with a 100-step
    tiny-bert: dense 0.5092 = chance, ticket 0.64, called winning before this check)."""
    ctl = {"random_mask": 0.51, "random_reinit": 0.51}
    v = verdict(manifest(0.5092, 0.64, ctl, chance=0.5092), 0.01)
    assert not v.winning and not v.dense_learned and "did not learn" in v.reason
    assert verdict(manifest(0.63, 0.64, ctl, chance=0.5092), 0.01).winning
    old = manifest(0.5092, 0.64, ctl)  # runs written before the check: no chance recorded
    assert verdict(old, 0.01).dense_learned


def test_verdict_needs_every_required_control():
    v = verdict(manifest(0.9, 0.9, {"random_mask": 0.5}), 0.01)
    assert not v.winning and "controls were not run" in v.reason
    v = verdict(manifest(0.9, 0.9, {"random_mask": 0.5, "random_reinit": 0.5,
                                    "oneshot": 0.95}), 0.01)
    assert v.winning and "informative" in v.reason  # the one-shot control does not decide


def test_verdict_round_trips_through_its_record():
    v = verdict(manifest(0.9, 0.9, {"random_mask": 0.5, "random_reinit": 0.5}), 0.01)
    assert type(v).from_dict(v.to_dict()) == v
    m = dataclasses.replace(manifest(0.9, 0.9, {}), verdict=v)
    assert Manifest.from_dict(m.to_dict()) == m
