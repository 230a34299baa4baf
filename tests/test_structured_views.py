"""`info` and `compare` on structured tickets: unit sparsity per round, the ticket's units by
state, the early-bird line, and what `compare --by head` counts as alive."""

from __future__ import annotations

import json

import pytest
from conftest import SAMPLE_MASKS
from structured_run import EARLY_BIRD, make_structured_run

from ticketlens.cli.main import main
from ticketlens.core.run import open_run

pytestmark = pytest.mark.skipif(not (SAMPLE_MASKS / "sentiment-s0").is_dir(),
                                reason="sample_masks absent")


@pytest.fixture(scope="module")
def unit_run(tmp_path_factory):
    return make_structured_run(tmp_path_factory.mktemp("structured") / "unit")


def test_info_shows_unit_sparsity_states_and_early_bird(unit_run, capsys):
    assert main(["info", str(unit_run)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal width
    assert "early-bird: the mask settled at step 20 of 64 (44 dense steps saved, 69%" in out
    assert "heads off" in out or "heads ┃" in out
    t = open_run(unit_run).ticket  # the mask the fixture wrote, its sparsity recomputed
    assert f"│ {t.index} * │ {t.sparsity:.1%} │ 25.0% │ 50.0% │ 0.9910 │" in out
    assert ("ticket units: heads 12 alive, 1 attention-blind (Q or K pruned; count as alive), "
            "1 constant (V pruned) and 2 dead (O pruned), both removable; FFN neurons 1016 "
            "alive, 3 constant (input side pruned), 5 dead (output side pruned)") in out


def test_info_json_carries_them(unit_run, capsys):
    assert main(["info", "--json", str(unit_run)]) == 0
    d = json.loads(capsys.readouterr().out)
    ticket = open_run(unit_run).ticket.index
    assert d["rounds"][ticket]["unit_sparsity"] == {"head": 0.25, "neuron": 0.5}
    assert d["ticket_units"] == {"head": {"alive": 12, "blind": 1, "constant": 1, "dead": 2},
                                 "neuron": {"alive": 1016, "constant": 3, "dead": 5}}
    bird = d["early_bird"]
    assert bird["stopped_at"] == EARLY_BIRD["stopped_at"] and bird["steps_saved"] == 44
    assert bird["saved_fraction"] == pytest.approx(44 / 64)


def test_info_of_a_weight_run_has_none_of_it(capsys):
    assert main(["info", str(SAMPLE_MASKS / "sentiment-s0")]) == 0
    out = capsys.readouterr().out
    assert "heads off" not in out and "early-bird" not in out and "ticket units" not in out
    assert main(["info", "--json", str(SAMPLE_MASKS / "sentiment-s0")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["early_bird"] is None and "unit_sparsity" not in d["rounds"][1]


def test_compare_by_head_counts_blind_heads_alive(unit_run, capsys):
    other = str(SAMPLE_MASKS / "sentiment-s1")
    assert main(["compare", str(unit_run), other, "--by", "head"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "attention-blind heads (Q or K pruned) still add a mix of V and count as alive" \
        in out
    assert main(["compare", str(unit_run), other, "--by", "head", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "count as alive" in d["unit_rule"]
    # the drawn units of the structured ticket: 13 of 16 heads alive (the blind one counts)
    assert d["super_survivors"]["observed"] == 13
    assert main(["compare", str(unit_run), other]) == 0
    assert "count as alive" not in capsys.readouterr().out  # by weight: no unit rule
