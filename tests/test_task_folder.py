"""A folder of split files (``train.tsv`` + ``dev.tsv``) is a task: its train file with its
dev file, named after the folder -- what a sweep over several file tasks needs."""

from __future__ import annotations

from ticketlens.core.config import DataConfig
from ticketlens.data.tasks import load_task


def _write(folder, name, rows):
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))


def test_folder_with_train_and_dev_files(tmp_path):
    d = tmp_path / "reviews"
    _write(d, "train.tsv", [("good film", 1), ("bad film", 0), ("fine", 1), ("awful", 0)])
    _write(d, "dev.tsv", [("great", 1), ("dull", 0), ("nice", 1)])
    task = load_task(DataConfig(task=str(d)))
    assert task.name == "reviews"
    assert (len(task.train), len(task.dev)) == (4, 3)  # the dev file, not a split of train
    assert task.dev.texts[0] == "great"
    # the same as naming the files
    same = load_task(DataConfig(task=str(d / "train.tsv"), dev_file=str(d / "dev.tsv")))
    assert same.dev.texts == task.dev.texts and same.train.labels == task.train.labels


def test_folder_without_dev_file_splits_train(tmp_path):
    d = tmp_path / "only"
    _write(d, "train.tsv", [(f"text {i}", i % 2) for i in range(20)])
    task = load_task(DataConfig(task=str(d), dev_fraction=0.25))
    assert (len(task.train), len(task.dev)) == (15, 5)
