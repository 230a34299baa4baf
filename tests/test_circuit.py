"""The ticket as a circuit: ablation hooks, attribution patching and the statistics against
hand computations, then the analysis and the command on a real structured run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import QUICK_FIND

from ticketlens.analysis.circuit import (
    ablated,
    activation_means,
    attribution_patching,
    circuit,
    constant_chance,
    keep_top,
    overlap_vs_chance,
)
from ticketlens.cli.main import main
from ticketlens.models.anatomy import anatomy_of
from ticketlens.models.load import build_preset
from ticketlens.pruning.structured import UnitGates


def _model(name: str = "tiny-bert"):
    loaded = build_preset(name, vocab_size=50, num_labels=2, pad_id=0, seed=3,
                          objective="classification")
    model = loaded.model.double().eval()
    return model, anatomy_of(model)


def _batch(seed: int = 0, n: int = 6, t: int = 9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (n, t), generator=g)
    attn = torch.ones(n, t, dtype=torch.long)
    attn[0, 6:] = 0  # one padded example
    ids[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": attn,
            "labels": torch.randint(0, 2, (n,), generator=g)}


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2", "tiny-llama"])
def test_zero_ablating_a_head_by_hook_equals_zeroing_its_o_slice(name):
    model, a = _model(name)
    b = _batch()
    layer, head = 1, 2
    remove = {"head": np.zeros((a.num_layers, a.num_heads), bool),
              "neuron": np.zeros((a.num_layers, a.intermediate), bool)}
    remove["head"][layer, head] = True
    remove["neuron"][0, [3, 7]] = True
    with torch.no_grad():
        with ablated(model, a, remove):
            hooked = model(**b).logits
        dense = model(**b).logits  # the hooks are gone again
        state = {k: v.clone() for k, v in model.state_dict().items()}
        params = dict(model.named_parameters())
        s = a.head_slices(layer, head)["o"]
        params[s.name][s.index()] = 0.0  # the head's O columns
        for n in (3, 7):
            s = a.neuron_slices(0, n)["out"]
            params[s.name][s.index()] = 0.0  # the neurons' FFN output columns
        zeroed = model(**b).logits
        model.load_state_dict(state)
    assert torch.allclose(hooked, zeroed, atol=1e-10)
    assert not torch.allclose(hooked, dense, atol=1e-6)
    assert torch.equal(model(**b).logits.detach(), dense)


def test_activation_means_by_hand():
    model, a = _model()
    b = _batch()
    seen = []
    o = next(t for t in a.layer_tensors(1) if t.role == "o")
    h = model.get_submodule(o.name.rsplit(".", 1)[0]).register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach()))
    with torch.no_grad():
        model(**b)
    h.remove()
    x = seen[0]  # (B, T, heads * head_dim)
    real = b["attention_mask"].bool()
    expected = x[real].mean(0)
    got = activation_means(model, a, [b])["head"][1]
    assert torch.allclose(got, expected.double(), atol=1e-12)


def test_attribution_patching_to_zero_is_minus_the_gate_gradient():
    """Zero ablation: sum over positions of (0 - x) dL/dx is -dL/dg for a gate g on the unit
    (Michel et al.'s signal), batch mean for batch mean."""
    model, a = _model()
    b = _batch()
    atp = attribution_patching(model, a, [b], None)
    with UnitGates(model, a, ("head", "neuron")) as gates:
        loss = model(**b).loss
        gh, gn = torch.autograd.grad(loss, [gates.head, gates.neuron])
    assert np.allclose(atp["head"]["signed"], -gh.numpy(), atol=1e-10)
    assert np.allclose(atp["neuron"]["signed"], -gn.numpy(), atol=1e-10)
    assert (atp["head"]["abs"] >= np.abs(atp["head"]["signed"]) - 1e-12).all()
    assert all(p.requires_grad for p in model.parameters())  # restored


def test_attribution_patching_is_the_finite_difference_toward_the_mean():
    """The estimate is the derivative of the loss along the patch x -> x + e (mean - x):
    compared with a central finite difference (float64, e = 1e-5) for a head and a neuron."""
    model, a = _model()
    b = _batch()
    means = activation_means(model, a, [b])
    atp = attribution_patching(model, a, [b], means)
    d = a.head_dim

    def loss_with(kind, layer, unit, eps):
        role = "o" if kind == "head" else "ffn_out"
        t = next(t for t in a.layer_tensors(layer) if t.role == role)
        lo, hi = (unit * d, (unit + 1) * d) if kind == "head" else (unit, unit + 1)

        def hook(m, args):
            x = args[0].clone()
            x[..., lo:hi] += eps * (means[kind][layer][lo:hi] - x[..., lo:hi])
            return (x,)

        h = model.get_submodule(t.name.rsplit(".", 1)[0]).register_forward_pre_hook(hook)
        try:
            with torch.no_grad():
                return float(model(**b).loss)
        finally:
            h.remove()

    for kind, layer, unit in (("head", 0, 1), ("head", 3, 2), ("neuron", 2, 17)):
        eps = 1e-5
        fd = (loss_with(kind, layer, unit, eps) - loss_with(kind, layer, unit, -eps)) / (2 * eps)
        assert atp[kind]["signed"][layer, unit] == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_overlap_and_chance_by_hand():
    kept = np.array([[True, True, True, False, False, False]])
    scores = np.array([[0.9, 0.1, 0.8, 0.7, 0.2, 0.3]])  # top 3: units 0, 2, 3
    shared, expected, p = overlap_vs_chance(kept, scores)
    assert shared == 2 and expected == pytest.approx(1.5)
    # P(X >= 2), X ~ hypergeometric(N=6, K=3, n=3): (C(3,2)C(3,1) + C(3,3)) / C(6,3) = 10/20
    assert p == pytest.approx(0.5)
    assert keep_top(np.array([[1.0, 3.0], [3.0, 0.0]]), 2).tolist() == [[False, True],
                                                                        [True, False]]
    assert constant_chance([0, 0, 1], "accuracy") == pytest.approx(2 / 3)
    assert constant_chance([0, 1, 1, 1], "f1") == pytest.approx(2 * 3 / (2 * 3 + 1))
    assert constant_chance([0.1, 0.5], "pearson", regression=True) == 0.0


@pytest.fixture(scope="module")
def unit_run(tmp_path_factory):
    """A structured ticket (heads and neurons) of tiny-bert on the sentiment task."""
    out = tmp_path_factory.mktemp("circuit") / "unit"
    assert main(["find", "--quiet", *QUICK_FIND, "--steps", "60it", "--granularity", "unit",
                 "--target-sparsity", "0.5", "--no-controls", "--out", str(out)]) == 0
    return out


def test_circuit_of_a_structured_ticket(unit_run):
    from ticketlens.core.run import open_run

    run = open_run(unit_run)
    head, neuron = run.drawn_units(None)
    res = circuit(run, draws=4, examples=10_000, attribution_examples=64,  # all of dev
                  layer_matched=True)
    ticket = res.row("ticket")
    # the ticket's removed units are its unit masks' zeros; every selection removes as many
    assert ticket.heads_removed == int((~head).sum()) > 0
    assert ticket.neurons_removed == int((~neuron).sum()) > 0
    for r in res.rows[1:]:
        assert (r.heads_removed, r.neurons_removed) == (ticket.heads_removed,
                                                        ticket.neurons_removed)
    dense = res.row("dense")
    assert dense.faithfulness == 1.0
    if dense.metric > res.chance:
        assert dense.normalised == pytest.approx(1.0)
    else:  # a dense model no better than a constant: nothing to normalise by
        assert math.isnan(dense.normalised)
    # on the whole dev split the dense row is the metric `find` recorded for round 0
    assert dense.metric == pytest.approx(run.manifest.round(0).metrics["accuracy"])
    rnd = res.row("random")
    assert rnd.draws == 4 and rnd.metric_sd is not None
    assert rnd.metric_range[0] <= rnd.metric <= rnd.metric_range[1]
    per_layer = res.row("random, same count per layer")
    assert per_layer.draws == 4 and per_layer.metric_sd is not None
    assert ticket.faithfulness == pytest.approx(ticket.metric / dense.metric)
    if dense.metric > res.chance:
        assert ticket.normalised == pytest.approx((ticket.metric - res.chance)
                                                  / (dense.metric - res.chance))
    for g in res.agreement:
        assert g.kept == (int(head.sum()) if g.kind == "head" else int(neuron.sum()))
        assert g.expected == pytest.approx(g.kept ** 2 / g.units)
        assert 0 <= g.shared <= g.kept
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))  # strict JSON
    from ticketlens.analysis.circuit import CircuitResult

    assert CircuitResult.from_dict(data).to_dict() == data  # reads back as written
    assert data["removal_rule"] == "the structured unit masks" and data["threshold"] is None
    # reproducible: the same call gives the same numbers
    again = circuit(run, draws=4, examples=10_000, attribution_examples=64,
                    layer_matched=True)
    assert [r.metric for r in again.rows] == [r.metric for r in res.rows]


def test_zero_ablation_of_the_ticket_equals_the_dense_weights_with_its_units_pruned(unit_run):
    """Zero-ablating the ticket's removed units by hooks = the dense weights under the
    ticket's weight masks, for the O and FFN output slices (what the hooks replace)."""
    from ticketlens.core.run import open_run
    from ticketlens.core.structure import expand_units

    run = open_run(unit_run)
    head, neuron = run.drawn_units(None)
    res = circuit(run, ablation="zero", draws=2, examples=128, attribution_examples=32)
    from ticketlens.models.load import model_from_run

    model = model_from_run(run, "dense")
    a = run.anatomy
    masks = expand_units(a, head=head, neuron=neuron)
    with torch.no_grad():
        for name, p in model.named_parameters():
            t = next((t for t in a.tensors if t.name == name), None)
            if t is not None and t.role in ("o", "ffn_out"):
                p.mul_(torch.as_tensor(masks[name], dtype=p.dtype))
    from ticketlens.analysis.circuit import _batches, score
    from ticketlens.core.config import FindConfig
    from ticketlens.data.tasks import load_task
    from ticketlens.data.tokenizer import TextTokenizer

    cfg = FindConfig.from_dict(dict(run.manifest.config))
    dev = load_task(cfg.data).dev.head(128)
    tok = TextTokenizer.from_file(run.paths.tokenizer)
    got = score(model, _batches(tok, dev, cfg.data.max_length, model, False, 64), "accuracy")
    assert res.row("ticket").metric == pytest.approx(got.metric)
    assert math.isclose(res.row("ticket").loss, got.loss, rel_tol=1e-5)


def test_circuit_command(unit_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the table to the terminal's width
    from ticketlens.analysis.circuit import read_circuit
    from ticketlens.checks import verify
    from ticketlens.core.run import open_run

    assert main(["circuit", str(unit_run), "--draws", "2", "--examples", "64",
                 "--attribution-examples", "32", "--layer-matched", "--json", "--save"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in data["rows"]][:2] == ["dense", "ticket"]
    assert read_circuit(open_run(unit_run)).to_dict() == data  # --save stored what it printed
    assert "analysis/circuit.json" in verify(unit_run).files
    # its SHA-256 is recorded like every other file the run holds (verify names a change)
    assert "analysis/circuit.json" in (open_run(unit_run).manifest.files or {})
    # a row whose faithfulness is not its metric over dense's fails verify
    path = open_run(unit_run).paths.circuit
    bad = json.loads(path.read_text())
    bad["rows"][1]["faithfulness"] += 0.5
    path.write_text(json.dumps(bad))
    from ticketlens.core.errors import RunFormatError

    with pytest.raises(RunFormatError, match="faithfulness"):
        verify(unit_run)
    path.write_text(json.dumps(data))
    assert main(["circuit", str(unit_run), "--draws", "2", "--examples", "64",
                 "--attribution-examples", "32"]) == 0
    out = capsys.readouterr().out
    assert "faithfulness" in out and "least important" in out
    assert main(["circuit", str(unit_run), "--examples", "0"]) == 2
    assert "--examples" in capsys.readouterr().err


def test_report_and_inspect_show_stability_and_circuit(unit_run):
    """The report draws the stored curves and tables and the TUI lists them, as computed
    (``circuit --save`` ran in the command test; stability runs here)."""
    import asyncio

    from ticketlens.analysis.circuit import read_circuit
    from ticketlens.core.run import open_run
    from ticketlens.pruning.stability import stability
    from ticketlens.report.html import build_report
    from ticketlens.tui.app import create_app

    run = open_run(unit_run)
    st = stability(run, rewinds=["rewind", "reinit"], points=3)
    circ = read_circuit(run)
    if circ is None:  # this test alone: store a table first
        assert main(["circuit", str(unit_run), "--draws", "2", "--examples", "64",
                     "--attribution-examples", "32", "--layer-matched", "--save"]) == 0
        circ = read_circuit(run)
    import ticketlens as tl

    fig = tl.figure(st)  # the report's figure, for a notebook: one curve per start point
    assert [len(t.x) for t in fig.data] == [3, 3]
    page = build_report([run])
    assert f"stability-0-{st.round}" in page and "as a circuit of the dense model" in page
    assert "least important (attribution patching)" in page

    async def look() -> tuple[list[str], list[str]]:
        app = create_app([str(unit_run)])
        async with app.run_test(size=(120, 80)) as pilot:
            await pilot.pause(0.3)
            s = app.screen.query_one(f"#stability-{st.round}")
            c = app.screen.query_one("#circuit")
            return ([str(s.get_row_at(i)[0]) for i in range(s.row_count)],
                    [str(c.get_row_at(i)[0]) for i in range(c.row_count)])

    starts, labels = asyncio.run(look())
    assert starts == ["rewind", "reinit"]
    assert labels[:2] == ["dense", "ticket"] and labels[-2].startswith("random (")
    assert labels[-1].startswith("random, same count per layer (")


def test_random_keep_matches_the_tickets_counts() -> None:
    """The random controls of the circuit table, by hand: the same total per kind, and with
    ``per_layer`` the same count in every layer; distinct selections from one generator."""
    import numpy as np

    from ticketlens.analysis.circuit import random_keep

    kept = {"head": np.array([[1, 1, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]], bool),
            "neuron": np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]],
                               bool)}
    rng = np.random.default_rng(0)
    draws = [random_keep(kept, rng, per_layer=True) for _ in range(30)]
    for d in draws:
        for k, m in kept.items():
            assert d[k].dtype == bool and d[k].shape == m.shape
            assert d[k].sum(axis=1).tolist() == m.sum(axis=1).tolist()
    assert len({d["head"].tobytes() for d in draws}) > 1  # random, not the ticket itself
    anywhere = [random_keep(kept, rng, per_layer=False) for _ in range(30)]
    assert all(d[k].sum() == kept[k].sum() for d in anywhere for k in kept)
    # over the model, some draw puts a different count in some layer (the per-layer control
    # exists because the plain one does)
    assert any(d["head"].sum(axis=1).tolist() != [2, 1, 4] for d in anywhere)


def _circuit_dict() -> dict:
    """A CircuitResult.to_dict() as the CLI gets it: the labels circuit() writes, long numbers,
    and the undefined statistics (None) of a kind the ticket keeps whole."""
    labels = ["dense", "ticket", "attribution patching", "gate importance",
              "least important (attribution patching)", "random"]
    rows = [{"label": lab, "heads_removed": 0 if lab == "dense" else 12,
             "neurons_removed": 0 if lab == "dense" else 1536, "metric": 0.8761,
             "loss": 0.4, "faithfulness": 0.9512, "normalised": None,
             "metric_sd": 0.0123 if lab == "random" else None,
             "draws": 20 if lab == "random" else 1} for lab in labels]
    agreement = [{"kind": kind, "scorer": scorer, "units": units, "kept": kept,
                  "shared": shared, "expected": kept * kept / units, "p_value": p,
                  "spearman": rho, "spearman_p": rho_p}
                 for kind, units, kept, shared, p, rho, rho_p in (
                     ("head", 144, 144, 144, None, None, None),
                     ("neuron", 36864, 18432, 10022, 0.0, 0.4431, 1.6e-50))
                 for scorer in ("attribution patching", "gate importance")]
    return {"round": 3, "metric": "accuracy", "ablation": "mean", "examples": 512,
            "attribution_examples": 256, "chance": 0.5092, "rows": rows,
            "agreement": agreement, "run": "run", "threshold": 0.5, "seed": 0,
            "importance": {}, "survival": {}, "wall_time_s": 1.0,
            "removal_rule": "dead, or keeping under 0.5 x the mean kept fraction of its kind"}


def test_circuit_table_fits_80_columns_without_cutting_a_word():
    """#23 item 3 for the circuit command: at 80 columns no cell or header is cut ("faithfuln…",
    "least important (attributi…"), undefined numbers print n/a with their reason once, a
    p-value that underflowed prints as < 1e-300 (review of #22)."""
    import io

    from rich.console import Console

    from ticketlens.cli.circuit import print_table

    buf = io.StringIO()
    print_table(_circuit_dict(), Console(file=buf, width=80, highlight=False))
    out = buf.getvalue()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(out.split())
    for word in ("faithfulness", "normalised", "(attribution", "patching)", "importance",
                 "18432/36864", "1.6e-50", "Spearman"):
        assert word in words, word
    assert "< 1e-300" in out and "nan" not in out.lower().replace("n/a", "")
    assert out.count("p n/a:") == 1 and out.count("ρ n/a:") == 1
    assert out.count("normalised n/a:") == 1


def test_circuit_findings_state_each_number_against_its_control():
    """#22 item 5 for the circuit: the findings say the ticket's faithfulness, the random
    draws' mean, sd and range with the rank test (above all D exchangeable draws: p =
    1 / (D + 1)), and each overlap against chance with Holm over the overlaps tested; an
    overlap that does not clear 0.05 after Holm is said as not found."""
    from ticketlens.analysis.circuit import CircuitResult
    from ticketlens.analysis.roles import holm

    d = _circuit_dict()
    for r in d["rows"]:
        if r["label"] == "ticket":
            r["metric"], r["faithfulness"] = 0.93, 0.93 / 0.95
        elif r["label"] == "dense":
            r["metric"], r["faithfulness"] = 0.95, 1.0
        elif r["label"] == "random":
            r["metric"], r["metric_sd"], r["metric_range"] = 0.61, 0.05, [0.52, 0.70]
    d["agreement"][2]["p_value"], d["agreement"][3]["p_value"] = 0.03, 0.2
    res = CircuitResult.from_dict(d)
    text = res.findings()
    assert text[0].startswith("Ablating the 12 heads and 1536 FFN neurons the ticket removed")
    assert "accuracy 0.9300 against 0.9500: faithfulness 0.979" in text[0]
    assert "0.6100 on average (sd 0.0500 over 20 draws, range 0.5200 to 0.7000): the " \
        "ticket's units do " \
        "better than every draw (one-sided rank p = 0.048)" in text[1]
    adj = holm([0.03, 0.2])  # the two neuron overlaps; the head ones have nothing to test
    neuron = [f for f in text if "kept neurons" in f]
    assert f"Holm-adjusted p = {adj[0]:.2g} >= 0.05" in neuron[0]  # 0.06: not found
    assert "no overlap beyond chance found" in neuron[0] and "p = 0.03" in neuron[0]
    assert all("nothing to test" in f for f in text if "kept heads" in f)
    # 19 draws or fewer cannot show it at 0.05 (1 / 20 = 0.05)
    d["rows"][-1]["draws"] = 19
    one = CircuitResult.from_dict(d).findings()[1]
    assert "no difference from random selections found (19 draws cannot show" in one
    # below every draw: described, never claimed at 1 / (D + 1) (the test is one-sided, for
    # "better"; both directions would need 2 / (D + 1) = 0.095 with 20 draws)
    d["rows"][-1]["draws"] = 20
    for r in d["rows"]:
        if r["label"] == "ticket":
            r["metric"] = 0.40
    low = CircuitResult.from_dict(d).findings()[1]
    assert "worse than every draw (described, not tested" in low and "rank p" not in low
