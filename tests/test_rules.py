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
    assert not v.winning and v.status == "inconclusive"
    assert "required control not run (random reinit)" in v.reason
    v = verdict(manifest(0.9, 0.9, {"random_mask": 0.5, "random_reinit": 0.5,
                                    "oneshot": 0.905}), 0.01)
    assert v.winning and "informative" in v.reason  # the one-shot control does not decide


def test_verdict_round_trips_through_its_record():
    v = verdict(manifest(0.9, 0.9, {"random_mask": 0.5, "random_reinit": 0.5}), 0.01)
    assert type(v).from_dict(v.to_dict()) == v
    m = dataclasses.replace(manifest(0.9, 0.9, {}), verdict=v)
    assert Manifest.from_dict(m.to_dict()) == m


def test_under_trained_dense_is_inconclusive_not_winning():
    """Shaped like sample_masks/sentiment-s2 of wave 1: dense 0.565 (majority class 0.528),
    ticket 0.988 -- labelled winning then. Dense beat a constant prediction, but not clearly,
    and the ticket beats dense by far: the baseline is under-trained."""
    ctl = {"random_mask": 0.66, "random_reinit": 0.70}
    v = verdict(manifest(0.565, 0.988, ctl, chance=0.528), 0.01)
    assert v.status == "inconclusive" and not v.winning and v.label == "INCONCLUSIVE"
    assert not v.dense_learned and v.dense_under_trained
    assert "--steps" in v.reason and "--lr" in v.reason
    for number in ("0.5650", "0.5280", "0.9880", "0.6600", "0.7000"):
        assert number in v.reason  # every number compared is stated


def test_dense_beaten_by_a_control_is_inconclusive():
    """Shaped like a wave-1 default find with --seed 3: dense 0.682 while every pruned round
    and the random re-init control reached >= 0.985."""
    v = verdict(manifest(0.682, 0.99, {"random_mask": 0.70, "random_reinit": 0.985},
                         chance=0.528), 0.01)
    assert v.status == "inconclusive" and v.dense_learned and v.dense_under_trained
    assert "the random reinit control (0.9850)" in v.reason and "under-trained" in v.reason
    # the same numbers with a dense model that trained: the ticket wins
    ok = verdict(manifest(0.985, 0.99, {"random_mask": 0.70, "random_reinit": 0.90},
                          chance=0.528), 0.01)
    assert ok.status == "winning" and ok.winning and not ok.dense_under_trained


def test_beating_a_control_needs_the_margin():
    """Better by 1e-12 was 'beats' in wave 1; now by more than --control-margin (default:
    the tolerance), and the margin is recorded."""
    ctl = {"random_mask": 0.90 - 1e-12, "random_reinit": 0.5}
    v = verdict(manifest(0.90, 0.90, ctl, chance=0.5), 0.01)
    assert v.status == "not winning" and not v.beats_controls["random_mask"]
    assert v.control_margin == 0.01 and "not more than the margin 0.01" in v.reason
    v = verdict(manifest(0.90, 0.90, {"random_mask": 0.885, "random_reinit": 0.5},
                         chance=0.5), 0.01)
    assert v.status == "winning"  # 1.5 points > 1 point
    v = verdict(manifest(0.90, 0.90, {"random_mask": 0.885, "random_reinit": 0.5},
                         chance=0.5), 0.01, control_margin=0.02)
    assert v.status == "not winning" and v.control_margin == 0.02


def test_perplexity_verdict_is_relative():
    ctl = {"random_mask": 30.0, "random_reinit": 40.0}
    v = verdict(manifest(20.0, 20.1, ctl, metric="perplexity"), 0.01)
    assert v.status == "winning" and v.matches_dense  # 20.1 <= 20.2
    v = verdict(manifest(20.0, 19.0, ctl, metric="perplexity"), 0.01)
    assert v.status == "inconclusive" and v.dense_under_trained  # 19.0 * 1.01 < 20


def test_every_clause_states_the_numbers_it_compares():
    v = verdict(manifest(0.9900, 0.9940, {"random_mask": 0.5280, "random_reinit": 0.7200,
                                          "oneshot": 0.9500}, chance=0.528), 0.01)
    assert v.status == "winning"
    clauses = v.reason.split("; ")
    assert "the ticket reaches accuracy 0.9940 against dense 0.9900 (+0.0040" in clauses[0]
    assert "beats the random mask control: 0.9940 against 0.5280 (+0.4660, more than the " \
           "margin 0.01)" in v.reason
    assert "0.9940 against 0.7200 (+0.2740" in v.reason
    assert "0.9940 against 0.9500 (+0.0440, more than the margin 0.01; informative)" in v.reason


def test_one_seed_says_it_cannot_show_a_match_beyond_seed_noise():
    """A ticket 0.4 points above or below dense matches it on this seed, but the run cannot
    measure the seed-to-seed spread: the reason says so in one clause and points at sweep."""
    for ticket in (0.9860, 0.9940):
        v = verdict(manifest(0.9900, ticket, {"random_mask": 0.6, "random_reinit": 0.7},
                             chance=0.528), 0.01)
        assert v.status == "winning"
        assert "within the tolerance 0.01 of dense" in v.reason
        assert "seed-to-seed noise" in v.reason and "ticketlens sweep" in v.reason
    # outside the tolerance: no such clause, and the miss is stated with its size
    v = verdict(manifest(0.9900, 0.9500, {"random_mask": 0.6, "random_reinit": 0.7},
                         chance=0.528), 0.01)
    assert v.status == "not winning" and "seed-to-seed" not in v.reason
    assert "(-0.0400: more than the tolerance 0.01 below dense)" in v.reason


def test_a_ticket_far_above_dense_is_never_within_the_tolerance():
    """Wave 1 printed 'within the tolerance 0.01' for dense 0.565 against a ticket at
    0.988; the ticket is 42 points *above* an under-trained dense, and the line says so."""
    v = verdict(manifest(0.565, 0.988, {"random_mask": 0.66, "random_reinit": 0.70},
                         chance=0.528), 0.01)
    assert "within the tolerance" not in v.reason
    assert "0.9880 against dense 0.5650 (+0.4230: better than dense by more than the " \
           "tolerance 0.01" in v.reason
    assert v.status == "inconclusive" and "under-trained" in v.reason


def test_the_metric_ceiling_is_inconclusive():
    """Sample agreement-s1 of the 80% default: dense, ticket and both controls at 1.0000."""
    v = verdict(manifest(1.0, 1.0, {"random_mask": 1.0, "random_reinit": 1.0},
                         chance=0.528), 0.01)
    assert v.status == "inconclusive" and not v.winning
    assert "too easy to tell a ticket from a random subnetwork" in v.reason
    assert "accuracy 1.0000" in v.reason
    # one control below the maximum: the run can tell, and here the ticket does not beat it
    v = verdict(manifest(1.0, 1.0, {"random_mask": 1.0, "random_reinit": 0.995},
                         chance=0.528), 0.01)
    assert v.status == "not winning" and "too easy" not in v.reason
    # perplexity has no reachable ceiling here: 1.0 is its best, never met by a real LM
    v = verdict(manifest(20.0, 20.1, {"random_mask": 30.0, "random_reinit": 40.0},
                         metric="perplexity"), 0.01)
    assert "too easy" not in v.reason
    assert "perplexity 20.1000 against dense 20.0000 (+0.50% relative, within the " \
           "tolerance 0.01 (relative) of dense" in v.reason
