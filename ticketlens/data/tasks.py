"""Resolve a task spec (a built-in name or a file) into labelled train and dev splits."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketlens.core.config import DataConfig
from ticketlens.core.errors import DataError
from ticketlens.data import synthetic
from ticketlens.data.files import PAIR_CANDIDATES, TEXT_CANDIDATES, pick_column, read_table


@dataclass
class Split:
    texts: list[str]
    labels: list[int]
    pairs: list[str] | None = None
    evidence: list[tuple[tuple[int, int], ...]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> Split:
        if not n or n >= len(self):
            return self
        return Split(self.texts[:n], self.labels[:n],
                     None if self.pairs is None else self.pairs[:n],
                     None if self.evidence is None else self.evidence[:n])


@dataclass
class TaskData:
    name: str
    source: str  # "builtin" | "file"
    label_names: tuple[str, ...]
    train: Split
    dev: Split
    metric: str = "accuracy"
    description: str = ""
    files: dict[str, str] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return self.train.pairs is not None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "metric": self.metric,
                "num_labels": self.num_labels, "label_names": list(self.label_names),
                "is_pair": self.is_pair, "train_size": len(self.train),
                "dev_size": len(self.dev), "description": self.description, **self.files}


def load_task(cfg: DataConfig, objective: str = "classification") -> TaskData:
    """Train and dev splits; for mlm/clm a ``.txt`` file (one text a line) is a corpus."""
    if objective != "classification" and Path(cfg.task).suffix.lower() == ".txt":
        task = _corpus(cfg)
    elif cfg.task in synthetic.TASKS:
        task = _builtin(cfg)
    elif Path(cfg.task).suffix or Path(cfg.task).exists():
        task = _from_files(cfg)
    else:
        raise DataError(f"unknown task {cfg.task!r}: use a built-in task "
                        f"({', '.join(synthetic.TASKS)}) or a .csv/.tsv/.jsonl file")
    task.train = task.train.head(cfg.train_size)
    task.dev = task.dev.head(cfg.dev_size)
    task.metric = _metric(cfg.metric, task)
    if len(task.train) < 2 or len(task.dev) < 1:
        raise DataError(f"task {task.name!r}: too few examples "
                        f"({len(task.train)} train, {len(task.dev)} dev)")
    return task


def _builtin(cfg: DataConfig) -> TaskData:
    spec = synthetic.TASKS[cfg.task]
    sizes = synthetic.DEFAULT_SIZES
    examples = synthetic.generate(cfg.task, sizes["train"] + sizes["dev"], cfg.data_seed)

    def split(exs: list[synthetic.Example]) -> Split:
        return Split([e.text for e in exs], [e.label for e in exs],
                     [e.text_pair or "" for e in exs] if spec.is_pair else None,
                     [e.evidence for e in exs])

    return TaskData(cfg.task, "builtin", spec.label_names, split(examples[: sizes["train"]]),
                    split(examples[sizes["train"]:]), description=spec.description)


def _read_split(path: str, cfg: DataConfig) -> tuple[list[str], list[str] | None, list[str]]:
    columns, rows = read_table(path)
    text_col = pick_column(path, columns, cfg.text_column, TEXT_CANDIDATES, "text",
                           "--text-column")
    if text_col is None:
        raise DataError(f"{path}: no text column found (columns: {', '.join(columns)}); "
                        "choose one with --text-column")
    pair_col = pick_column(path, columns, cfg.text_pair_column, PAIR_CANDIDATES, "text pair",
                           "--text-pair-column")
    if cfg.label_column not in columns:
        raise DataError(f"{path}: no label column {cfg.label_column!r} (columns: "
                        f"{', '.join(columns)}); choose one with --label-column")
    texts = [r[text_col] for r in rows]
    pairs = [r[pair_col] for r in rows] if pair_col else None
    labels = [r[cfg.label_column].strip() for r in rows]
    for i, lab in enumerate(labels):
        if lab == "":
            raise DataError(f"{path}: row {i + 2} has an empty label")
    return texts, pairs, labels


def _from_files(cfg: DataConfig) -> TaskData:
    texts, pairs, raw = _read_split(cfg.task, cfg)
    names = _label_names(raw)
    index = {n: i for i, n in enumerate(names)}
    train = Split(texts, [index[x] for x in raw], pairs)
    files = {"train_file": str(Path(cfg.task).resolve())}
    if cfg.dev_file:
        dtexts, dpairs, draw = _read_split(cfg.dev_file, cfg)
        unknown = sorted(set(draw) - set(index))
        if unknown:
            raise DataError(f"{cfg.dev_file}: labels not seen in training: {unknown[:5]}")
        if (dpairs is None) != (pairs is None):
            raise DataError(f"{cfg.dev_file}: train and dev files disagree on sentence pairs")
        dev = Split(dtexts, [index[x] for x in draw], dpairs)
        files["dev_file"] = str(Path(cfg.dev_file).resolve())
    else:
        order = list(range(len(train)))
        random.Random(cfg.data_seed).shuffle(order)
        n_dev = max(1, round(cfg.dev_fraction * len(order)))
        dev, train = _take(train, order[:n_dev]), _take(train, order[n_dev:])
    return TaskData(_file_task_name(Path(cfg.task)), "file", names, train, dev, files=files)


def _file_task_name(path: Path) -> str:
    """``data/sst2/train.tsv`` -> ``sst2``; ``reviews.csv`` -> ``reviews``."""
    if path.stem.lower() in ("train", "training", "data", "all") and path.parent.name:
        return path.resolve().parent.name
    return path.stem


GLUE_METRICS = {"cola": "mcc", "mrpc": "f1", "qqp": "f1"}


def _metric(choice: str, task: TaskData) -> str:
    """The GLUE convention when ``auto`` (by task name); F1 and MCC need two labels."""
    metric = GLUE_METRICS.get(task.name.lower(), "accuracy") if choice == "auto" else choice
    if metric in ("f1", "mcc") and task.num_labels != 2:
        raise DataError(f"--metric {metric} needs a binary task; {task.name!r} has "
                        f"{task.num_labels} labels")
    return metric


def _corpus(cfg: DataConfig) -> TaskData:
    p = Path(cfg.task)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text") from None
    if len(lines) < 3:
        raise DataError(f"{p}: a corpus needs at least 3 non-empty lines")
    order = list(range(len(lines)))
    random.Random(cfg.data_seed).shuffle(order)
    n_dev = max(1, round(cfg.dev_fraction * len(order)))
    split = Split(lines, [0] * len(lines))
    return TaskData(_file_task_name(p), "file", ("text",), _take(split, order[n_dev:]),
                    _take(split, order[:n_dev]), files={"train_file": str(p.resolve())})


def _take(s: Split, idx: list[int]) -> Split:
    return Split([s.texts[i] for i in idx], [s.labels[i] for i in idx],
                 None if s.pairs is None else [s.pairs[i] for i in idx])


def _label_names(raw: list[str]) -> tuple[str, ...]:
    uniq = set(raw)
    if all(x.lstrip("-").isdigit() for x in uniq):
        ints = sorted(int(x) for x in uniq)
        if ints == list(range(len(ints))):
            return tuple(str(i) for i in ints)
    if len(uniq) < 2:
        raise DataError(f"only one label value in the data: {next(iter(uniq))!r}")
    return tuple(sorted(uniq))
