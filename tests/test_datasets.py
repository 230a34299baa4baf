"""Hugging Face datasets as tasks (hub names, saved folders) and regression tasks (STS-B).

No hub here: hub loading is tested through ``datasets.load_dataset`` replaced by a local
DatasetDict (the call it receives is checked), and the offline path for real.
"""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch
from conftest import run_cli

from ticketlens.core.config import DataConfig
from ticketlens.core.errors import DataError
from ticketlens.data import hub
from ticketlens.data.tasks import load_task
from ticketlens.pruning.metrics import regression_metrics

datasets = pytest.importorskip("datasets")


def _glue_like(rows: int, text: str, pair: str | None, names: list[str] | None,
               labels: list, unlabelled_test: bool = True):
    """A DatasetDict shaped like a GLUE task: ClassLabel labels (or float scores), idx."""
    cols = {text: [f"first {i} ." for i in range(rows)]}
    if pair:
        cols[pair] = [f"second {i} ." for i in range(rows)]
    feats = {c: datasets.Value("string") for c in cols}
    cols["label"] = labels
    feats["label"] = datasets.ClassLabel(names=names) if names else datasets.Value("float32")
    cols["idx"] = list(range(rows))
    feats["idx"] = datasets.Value("int32")
    ds = datasets.Dataset.from_dict(cols, features=datasets.Features(feats))
    test = ds.select(range(5))
    if unlabelled_test and names:
        test = test.map(lambda r: {"label": -1})
    return datasets.DatasetDict({"train": ds.select(range(10, rows)),
                                 "validation": ds.select(range(10)), "test": test})


def test_dataset_names():
    assert hub.parse_name("glue/sst2") == hub.DatasetName("nyu-mll/glue", "sst2")
    assert hub.parse_name("glue/MRPC") == hub.DatasetName("nyu-mll/glue", "mrpc")
    assert hub.parse_name("stanfordnlp/imdb") == hub.DatasetName("stanfordnlp/imdb", None)
    assert hub.parse_name("wikitext:wikitext-2-raw-v1") == hub.DatasetName(
        "wikitext", "wikitext-2-raw-v1")
    assert hub.parse_name("glue/notatask").path == "glue/notatask"  # an ordinary repo id
    assert hub.parse_name("a/b/c") is None and hub.parse_name("./x") is None
    assert hub.parse_name("glue/sst2").task_name == "sst2"
    assert hub.parse_name("stanfordnlp/imdb").task_name == "imdb"


def test_saved_glue_folder_uses_glue_columns_class_names_and_a_labelled_dev(tmp_path):
    # QNLI puts the question first: candidate lists alone would take "sentence" as the text
    labels = [i % 2 for i in range(60)]
    _glue_like(60, "question", "sentence", ["entailment", "not_entailment"],
               labels).save_to_disk(tmp_path / "qnli")
    task = load_task(DataConfig(task=str(tmp_path / "qnli")))
    assert task.source == "dataset" and task.name == "qnli"
    assert task.label_names == ("entailment", "not_entailment")
    assert task.train.texts[0] == "first 10 ." and task.train.pairs[0] == "second 10 ."
    assert task.train.labels[:2] == [0, 1]
    assert len(task.train) == 50 and len(task.dev) == 10
    assert task.info()["dev_split"] == "validation" and task.metric == "accuracy"
    # GLUE's test split is unlabelled (-1): chosen explicitly, it is refused in one line
    with pytest.raises(DataError, match=r"\[test\]: no labelled rows"):
        load_task(DataConfig(task=str(tmp_path / "qnli"), dev_split="test"))
    with pytest.raises(DataError, match="no split 'dev'"):
        load_task(DataConfig(task=str(tmp_path / "qnli"), dev_split="dev"))


def test_caps_take_a_seeded_random_subset_of_a_sorted_dataset(tmp_path):
    labels = [0] * 100 + [1] * 100  # sorted by label, as many hub datasets are
    _glue_like(210, "sentence", None, ["negative", "positive"],
               [0] * 10 + labels).save_to_disk(tmp_path / "sst2")
    cfg = DataConfig(task=str(tmp_path / "sst2"), train_size=40, dev_size=4)
    a, b = load_task(cfg), load_task(cfg)
    assert len(a.train) == 40 and len(a.dev) == 4
    assert a.train.texts == b.train.texts  # seeded
    assert 5 < sum(a.train.labels) < 35  # both classes, not the first 40 rows
    other = load_task(DataConfig(task=str(tmp_path / "sst2"), train_size=40, data_seed=1))
    assert other.train.texts != a.train.texts


def test_no_dev_split_holds_out_part_of_train(tmp_path):
    ds = datasets.Dataset.from_dict({"text": [f"t {i}" for i in range(100)],
                                     "label": ["pos", "neg"] * 50})
    ds.save_to_disk(tmp_path / "single")
    task = load_task(DataConfig(task=str(tmp_path / "single"), dev_fraction=0.2))
    assert (len(task.train), len(task.dev)) == (80, 20)
    assert task.label_names == ("neg", "pos")  # plain strings: sorted, as for files
    assert set(task.train.texts).isdisjoint(task.dev.texts)


def test_hub_name_loads_through_datasets(monkeypatch):
    from huggingface_hub import constants

    calls = []
    mrpc = _glue_like(40, "sentence1", "sentence2", ["not_equivalent", "equivalent"],
                      [i % 2 for i in range(40)])

    def fake_load_dataset(path, name=None, **kw):
        calls.append((path, name, constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE))
        return mrpc

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    before = constants.HF_HUB_OFFLINE
    level = datasets.logging.get_verbosity()
    task = load_task(DataConfig(task="glue/mrpc"), hub_offline=lambda: True)
    assert datasets.logging.get_verbosity() == level  # no process-wide setting left changed
    # GLUE on the hub is nyu-mll/glue with the task as config; offline -> cache only
    assert calls == [("nyu-mll/glue", "mrpc", True, True)]
    assert before == constants.HF_HUB_OFFLINE  # restored
    assert task.source == "hub" and task.name == "mrpc" and task.is_pair
    assert task.metric == "f1"  # the GLUE metric of MRPC
    assert task.info()["dataset"] == "nyu-mll/glue:mrpc"


def test_offline_hub_dataset_fails_in_one_line(tmp_path):
    # an endpoint nobody answers (a closed local port): the probe finds the hub unreachable,
    # on any machine, and the dataset is looked up in an empty cache only
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "",
           "HF_HOME": str(tmp_path / "hf")}
    # (how soon it fails, goal < 20 s: tests/benchmarks/test_offline_bench.py)
    proc = run_cli("find", "--task", "glue/sst2", "--out", str(tmp_path / "r"), env=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nyu-mll/glue:sst2" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_missing_datasets_package_is_one_clear_line(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DataError, match=r"ticketlens\[hub\]"):
        load_task(DataConfig(task="glue/sst2"))


def test_lm_corpus_from_a_dataset_needs_no_labels(tmp_path):
    ds = datasets.Dataset.from_dict({"text": ["one line", "", "two lines here", " ",
                                              "three"] * 4})
    datasets.DatasetDict({"train": ds, "validation": ds.select(range(5))}).save_to_disk(
        tmp_path / "wiki")
    task = load_task(DataConfig(task=str(tmp_path / "wiki")), objective="clm")
    assert task.metric == "perplexity" and len(task.train) == 12 and len(task.dev) == 3
    assert "" not in task.train.texts


# --------------------------------------------------------------------------- regression
def test_regression_metrics_match_numpy_and_hand_computation():
    p = torch.tensor([1.0, 2.0, 3.0, 5.0])
    y = torch.tensor([1.5, 1.0, 4.0, 4.5])
    m = regression_metrics(p, y)
    assert m["pearson"] == pytest.approx(np.corrcoef(p.numpy(), y.numpy())[0, 1])
    # Spearman = Pearson of ranks: ranks p 1 2 3 4, y 2 1 3 4 -> 1 - 6*2/(4*15) = 0.8
    assert m["spearman"] == pytest.approx(0.8)
    assert m["mse"] == pytest.approx((0.25 + 1 + 1 + 0.25) / 4)
    assert regression_metrics(torch.ones(4), y)["pearson"] == 0.0  # undefined -> 0


def test_stsb_is_a_regression_task_with_pearson(tmp_path):
    scores = [round(i % 26 / 5, 1) for i in range(60)]
    _glue_like(60, "sentence1", "sentence2", None, scores).save_to_disk(tmp_path / "stsb")
    task = load_task(DataConfig(task=str(tmp_path / "stsb")))
    assert task.regression and task.metric == "pearson" and task.label_names == ("score",)
    assert task.train.labels[:3] == pytest.approx([2.0, 2.2, 2.4])
    assert load_task(DataConfig(task=str(tmp_path / "stsb"), metric="spearman")).metric == \
        "spearman"


def test_regression_from_files(tmp_path):
    path = tmp_path / "scores.tsv"
    path.write_text("text\tlabel\n" + "".join(f"t {i}\t{i / 7:.3f}\n" for i in range(30)))
    task = load_task(DataConfig(task=str(path)))  # fractional numbers: scores, not classes
    assert task.regression and task.metric == "pearson"
    ints = tmp_path / "ints.tsv"
    ints.write_text("text\tlabel\n" + "".join(f"t {i}\t{i % 3}\n" for i in range(30)))
    assert not load_task(DataConfig(task=str(ints))).regression
    assert load_task(DataConfig(task=str(ints), metric="pearson")).regression
    words = tmp_path / "words.tsv"
    words.write_text("text\tlabel\n" + "".join(f"t {i}\tpos\n" for i in range(30)))
    with pytest.raises(DataError, match="not a number"):
        load_task(DataConfig(task=str(words), metric="pearson"))
    with pytest.raises(DataError, match="needs numeric scores"):
        load_task(DataConfig(task="sentiment", metric="pearson"))


def _score_file(path, n=1200, seed=0):
    """Score = number of positive words (0-5) plus noise: learnable by a tiny BERT."""
    r = random.Random(seed)
    pos, fill = ["good", "great", "fine", "nice", "superb"], ["the", "a", "film", "was", "plot"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sentence", "label"])
        for _ in range(n):
            words = [r.choice(fill) for _ in range(r.randint(3, 8))]
            k = r.randint(0, 5)
            for _ in range(k):
                words.insert(r.randrange(len(words) + 1), r.choice(pos))
            w.writerow([" ".join(words), round(k + r.uniform(-0.3, 0.3), 2)])


def test_regression_find_end_to_end(tmp_path):
    from ticketlens.cli.main import main
    from ticketlens.core.run import open_run
    from ticketlens.models.load import model_from_run

    _score_file(tmp_path / "scores.csv")
    out = tmp_path / "run"
    assert main(["find", "--quiet", "--task", str(tmp_path / "scores.csv"), "--out", str(out),
                 "--steps", "120it", "--rate", "0.5", "--target-sparsity", "0.5",
                 "--batch-size", "16"]) == 0
    run = open_run(out)
    assert run.manifest.task.extra["regression"] and run.metric == "pearson"
    dense = run.rounds[0].metrics
    assert set(dense) >= {"pearson", "spearman", "mse", "loss"}
    assert dense["pearson"] > 0.8  # it learned the score
    model = model_from_run(run, "ticket")
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
    assert run.verdict.metric == "pearson"
