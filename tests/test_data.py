"""Built-in tasks and local files."""

from __future__ import annotations

import re

import pytest

from ticketlens.core.config import DataConfig
from ticketlens.core.errors import DataError
from ticketlens.data import synthetic as S
from ticketlens.data.batching import TensorData, length_grouped_order
from ticketlens.data.tasks import load_task
from ticketlens.data.tokenizer import builtin_tokenizer


@pytest.mark.parametrize("name", list(S.TASKS))
def test_builtin_tasks_are_deterministic_balanced_and_in_vocab(name):
    a = S.generate(name, 2000, 7)
    assert a == S.generate(name, 2000, 7)
    assert a != S.generate(name, 2000, 8)
    share = sum(e.label for e in a) / len(a)
    assert 0.4 < share < 0.6
    tok = builtin_tokenizer()
    for e in a[:200]:
        assert "[UNK]" not in tok.tokens(e.text, e.text_pair)


def test_evidence_points_at_the_deciding_words():
    for e in S.generate("sentiment", 500, 0):
        words = e.text.split()
        adj = [words[i] for _, i in e.evidence if words[i] in S.POSITIVE + S.NEGATIVE]
        neg = [words[i] for _, i in e.evidence if words[i] in S.NEGATORS]
        assert len(adj) == 1
        assert e.label == int((adj[0] in S.POSITIVE) != bool(neg))
    plurals = {p for _, p in S.NOUNS}
    attracted = coordinated = 0
    for e in S.generate("agreement", 500, 0):
        words = e.text.split()
        subj = [words[i] for _, i in e.evidence]
        if len(subj) == 3:
            assert subj[1] == "and" and e.label == 1 and not set(subj) & plurals
            coordinated += 1
        else:
            assert e.label == int(subj[0] in plurals)
        heads = {i for _, i in e.evidence}
        others = [w for i, w in enumerate(words) if i not in heads and w in plurals | {
            s for s, _ in S.NOUNS}]
        attracted += any(int(w in plurals) != e.label for w in others)
    assert attracted > 150 and coordinated > 50
    for e in S.generate("paraphrase", 500, 0):
        segs = (e.text.split(), e.text_pair.split())
        ev = [segs[s][i] for s, i in e.evidence]
        assert ev[0] in S.AGENTS and ev[1] in S.TRANSITIVE and ev[2] in S.AGENTS
        same = ev[:3] == ev[3:] if "by" not in segs[1] else ev[:3] == [ev[5], ev[4], ev[3]]
        assert e.label == int(same)


def test_length_grouped_batches_cover_every_example_once():
    import torch

    lengths = [(i * 7) % 23 + 1 for i in range(1000)]
    batches = length_grouped_order(lengths, 32, torch.Generator().manual_seed(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 3  # grouped: little padding within a batch
    data = TensorData(builtin_tokenizer().encode(["the plot"], None, 8), [0])
    assert data.lengths == [4]


def test_file_task_csv_tsv_jsonl(tmp_path):
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(
        f"good {i},pos\nbad {i},neg\n" for i in range(20)))
    task = load_task(DataConfig(task=str(tmp_path / "t.csv")))
    assert task.label_names == ("neg", "pos")
    assert len(task.train) + len(task.dev) == 40 and len(task.dev) == 4
    (tmp_path / "t.jsonl").write_text("".join(
        f'{{"sentence1": "a {i}", "sentence2": "b", "label": {i % 2}}}\n' for i in range(10)))
    task = load_task(DataConfig(task=str(tmp_path / "t.jsonl")))
    assert task.is_pair and task.label_names == ("0", "1")


def test_file_task_errors(tmp_path):
    (tmp_path / "nolabel.csv").write_text("text,target\nhello,1\nbye,0\n")
    with pytest.raises(DataError, match=r"no label column 'label'.*--label-column"):
        load_task(DataConfig(task=str(tmp_path / "nolabel.csv")))
    with pytest.raises(DataError, match="unknown task"):
        load_task(DataConfig(task="sentimnet"))
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 1}\n{oops\n')
    with pytest.raises(DataError, match="invalid JSON on line 2"):
        load_task(DataConfig(task=str(tmp_path / "bad.jsonl")))
    one = tmp_path / "one-class.csv"  # the error names the file it is about
    one.write_text("text,label\nhello,pos\nbye,pos\nok,pos\n")
    with pytest.raises(DataError, match=rf"^{re.escape(str(one))}: only one label value "
                                        r"in the training data \('pos'\)"):
        load_task(DataConfig(task=str(one)))


def test_binary_metrics_by_hand():
    import math

    import torch

    from ticketlens.pruning.metrics import classification_metrics, f1_binary, mcc

    preds = torch.tensor([1, 1, 1, 0, 0, 0, 1, 0])
    labels = torch.tensor([1, 1, 0, 0, 0, 1, 1, 0])
    tp, tn, fp, fn = 3, 3, 1, 1
    assert f1_binary(preds, labels) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert mcc(preds, labels) == pytest.approx(
        (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    assert mcc(torch.ones(4, dtype=torch.long), torch.tensor([1, 0, 1, 0])) == 0.0
    assert set(classification_metrics(preds, labels, "mcc")) == {"accuracy", "mcc"}


def test_glue_metric_by_task_name(tmp_path):
    cola = tmp_path / "CoLA"
    cola.mkdir()
    (cola / "train.tsv").write_text("sentence\tlabel\n" + "".join(
        f"s{i}\t{i % 2}\n" for i in range(20)))
    assert load_task(DataConfig(task=str(cola / "train.tsv"))).metric == "mcc"
    assert load_task(DataConfig(task=str(cola / "train.tsv"), metric="f1")).metric == "f1"
    (tmp_path / "three.csv").write_text("text,label\n" + "".join(
        f"t{i},{i % 3}\n" for i in range(30)))
    with pytest.raises(DataError, match="needs a binary task"):
        load_task(DataConfig(task=str(tmp_path / "three.csv"), metric="mcc"))


@pytest.mark.parametrize(("vocab", "pad"), [
    (["[PAD]", "[UNK]", "a"], "[PAD]"),                        # BERT
    (["<|endoftext|>", "a"], "<|endoftext|>"),                 # GPT-2, Qwen
    (["<unk>", "<s>", "</s>", "a"], "</s>"),                   # Llama 1-2, Mistral
    (["<|begin_of_text|>", "<|end_of_text|>", "a"], "<|end_of_text|>"),  # Llama 3
])
def test_padding_token_of_model_tokenizers(vocab, pad):
    from tokenizers import Tokenizer, models

    from ticketlens.data.tokenizer import TextTokenizer

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=vocab[0]))
    t = TextTokenizer(tok, "model")
    assert t.pad_token == pad and t.pad_id == vocab.index(pad)
    with pytest.raises(DataError, match="no padding token"):
        TextTokenizer(Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a")), "model")
