"""Resolve a task spec into labelled train and dev splits.

A spec is a built-in task name, a CSV/TSV/JSONL file (for mlm/clm also a ``.txt`` corpus), a
folder saved with ``datasets``' ``save_to_disk``, or a Hugging Face dataset name
(``glue/sst2``, ``owner/name``, ``name:config``). Every source goes through one assembly step:
labels become class ids (or float scores for a regression task such as STS-B), a dev split is
held out when there is none, and the sizes are capped.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketlens.core.config import DataConfig
from ticketlens.core.errors import DataError
from ticketlens.data import hub, synthetic
from ticketlens.data.files import PAIR_CANDIDATES, TEXT_CANDIDATES, pick_column, read_table
from ticketlens.data.labels import (
    REGRESSION_METRICS,
    class_ids,
    class_metric,
    is_regression,
    label_names,
    regression_metric,
    scores,
)

FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".txt")


@dataclass
class Split:
    texts: list[str]
    labels: list  # class ids (int) or scores (float, regression)
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

    def take(self, idx: list[int]) -> Split:
        return Split([self.texts[i] for i in idx], [self.labels[i] for i in idx],
                     None if self.pairs is None else [self.pairs[i] for i in idx],
                     None if self.evidence is None else [self.evidence[i] for i in idx])


@dataclass
class TaskData:
    name: str
    source: str  # "builtin" | "file" | "dataset" (saved folder) | "hub"
    label_names: tuple[str, ...]  # ("score",) for a regression task
    train: Split
    dev: Split
    metric: str = "accuracy"
    description: str = ""
    files: dict[str, str] = field(default_factory=dict)
    regression: bool = False

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        return self.train.pairs is not None

    def chance(self) -> float | None:
        """What a constant prediction scores on dev with the task's metric: the majority
        class's share (accuracy), always-positive (F1), 0 (MCC, correlations)."""
        labels = self.dev.labels
        if not labels or self.metric not in ("accuracy", "f1", "mcc", *REGRESSION_METRICS):
            return None
        if self.metric == "accuracy":
            return max(Counter(labels).values()) / len(labels)
        if self.metric == "f1":
            p = sum(1 for y in labels if y == 1) / len(labels)
            return 2 * p / (1 + p)
        return 0.0

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "metric": self.metric,
                "num_labels": self.num_labels, "label_names": list(self.label_names),
                "regression": self.regression, "is_pair": self.is_pair,
                "train_size": len(self.train), "dev_size": len(self.dev),
                "description": self.description, **self.files}


@dataclass
class _Raw:
    """A split as read: labels are strings (files), ints (class ids) or floats (scores)."""

    texts: list[str]
    pairs: list[str] | None
    labels: list


def load_task(cfg: DataConfig, objective: str = "classification", *,
              hub_offline: Callable[[], bool] | None = None) -> TaskData:
    """The task ``cfg`` names; ``hub_offline`` answers whether the hub is unreachable (the
    caller's probe, so a search probes once; default: probe when a hub dataset is asked)."""
    lm = objective != "classification"
    path = Path(cfg.task)
    if lm and path.suffix.lower() == ".txt":
        task = _corpus(cfg)
    elif cfg.task in synthetic.TASKS:
        task = _builtin(cfg)
    elif path.suffix.lower() in FILE_SUFFIXES or path.is_file():
        task = _from_files(cfg, lm)
    elif path.is_dir() and not hub.is_saved_dataset(path) and _split_file(path, "train"):
        # a folder of split files (train.tsv, dev.tsv, ...): the file task with its dev file
        train = _split_file(path, "train")
        dev = cfg.dev_file or next((str(f) for n in ("dev", "validation", "valid", "test")
                                    if (f := _split_file(path, n))), "")
        task = _from_files(dataclasses.replace(cfg, task=str(train), dev_file=dev), lm)
        task.name = _dir_task_name(path)
    elif path.is_dir():
        if not hub.is_saved_dataset(path):
            raise DataError(f"{path}: a folder, but not one saved by datasets' save_to_disk "
                            "(no dataset_dict.json); give a file instead")
        task = _from_datasets(cfg, hub.load_saved(path), _dir_task_name(path), "dataset",
                              {"dataset": str(path.resolve())}, lm)
    elif (name := hub.parse_name(cfg.task)) is not None:
        try:
            splits = hub.load_hub(name, hub_offline or hub.hub_offline)
        except DataError as exc:
            if "/" in cfg.task or ":" in cfg.task:
                raise
            raise DataError(f"unknown task {cfg.task!r}: not a built-in task "
                            f"({', '.join(synthetic.TASKS)}) or a file, and as a Hugging Face "
                            f"dataset: {exc}") from None
        task = _from_datasets(cfg, splits, name.task_name, "hub", {"dataset": str(name)}, lm)
    else:
        raise DataError(f"unknown task {cfg.task!r}: use a built-in task "
                        f"({', '.join(synthetic.TASKS)}), a .csv/.tsv/.jsonl file, a saved "
                        "dataset folder or a Hugging Face dataset name such as glue/sst2")
    task.train = task.train.head(cfg.train_size)
    task.dev = task.dev.head(cfg.dev_size)
    if len(task.train) < 2 or len(task.dev) < 1:
        raise DataError(f"task {task.name!r}: too few examples "
                        f"({len(task.train)} train, {len(task.dev)} dev)")
    return task


# --------------------------------------------------------------------------- sources
def _builtin(cfg: DataConfig) -> TaskData:
    spec = synthetic.TASKS[cfg.task]
    sizes = synthetic.DEFAULT_SIZES
    examples = synthetic.generate(cfg.task, sizes["train"] + sizes["dev"], cfg.data_seed)

    def split(exs: list[synthetic.Example]) -> Split:
        return Split([e.text for e in exs], [e.label for e in exs],
                     [e.text_pair or "" for e in exs] if spec.is_pair else None,
                     [e.evidence for e in exs])

    task = TaskData(cfg.task, "builtin", spec.label_names, split(examples[: sizes["train"]]),
                    split(examples[sizes["train"]:]), description=spec.description)
    if cfg.metric in REGRESSION_METRICS:
        raise DataError(f"--metric {cfg.metric} needs numeric scores; the built-in task "
                        f"{cfg.task!r} has classes")
    task.metric = class_metric(cfg.metric, task.name, task.num_labels)
    return task


def _columns(where: str, columns: list[str], cfg: DataConfig, name: str,
             lm: bool) -> tuple[str, str | None, str | None]:
    """(text, pair or None, label or None for an LM corpus) columns of a table."""
    glue = hub.GLUE_COLUMNS.get(name.lower())
    if glue and not cfg.text_column and all(c is None or c in columns for c in glue):
        text_col, pair_col = glue
        if cfg.text_pair_column:
            pair_col = pick_column(where, columns, cfg.text_pair_column, (), "text pair",
                                   "--text-pair-column")
    else:
        text_col = pick_column(where, columns, cfg.text_column, TEXT_CANDIDATES, "text",
                               "--text-column")
        if text_col is None:
            raise DataError(f"{where}: no text column found (columns: {', '.join(columns)}); "
                            "choose one with --text-column")
        pair_col = pick_column(where, columns, cfg.text_pair_column, PAIR_CANDIDATES,
                               "text pair", "--text-pair-column")
        if pair_col == text_col:
            pair_col = None
    label_col: str | None = cfg.label_column
    if label_col not in columns:
        if not lm:
            raise DataError(f"{where}: no label column {label_col!r} (columns: "
                            f"{', '.join(columns)}); choose one with --label-column")
        label_col = None
    return text_col, pair_col, label_col


def _read_split(path: str, cfg: DataConfig, name: str, lm: bool) -> _Raw:
    columns, rows = read_table(path)
    text_col, pair_col, label_col = _columns(path, columns, cfg, name, lm)
    texts = [r[text_col] for r in rows]
    pairs = [r[pair_col] for r in rows] if pair_col else None
    labels = [r[label_col].strip() for r in rows] if label_col else [""] * len(rows)
    if label_col:
        for i, lab in enumerate(labels):
            if lab == "":
                raise DataError(f"{path}: row {i + 2} has an empty label")
    return _Raw(texts, pairs, labels)


def _from_files(cfg: DataConfig, lm: bool) -> TaskData:
    name = _file_task_name(Path(cfg.task))
    train = _read_split(cfg.task, cfg, name, lm)
    files = {"train_file": str(Path(cfg.task).resolve())}
    dev = None
    if cfg.dev_file:
        dev = _read_split(cfg.dev_file, cfg, name, lm)
        files["dev_file"] = str(Path(cfg.dev_file).resolve())
    return _assemble(cfg, name, "file", train, dev, None, files, lm, where=cfg.dev_file)


def _from_datasets(cfg: DataConfig, splits: dict[str, Any], name: str, source: str,
                   files: dict[str, str], lm: bool) -> TaskData:
    where = files["dataset"]
    some = next(iter(splits.values()), None)
    if some is None:
        raise DataError(f"{where}: the dataset has no splits")
    label = cfg.label_column if cfg.label_column in some.column_names else None
    train_name, dev_name = hub.pick_splits(splits, cfg.train_split, cfg.dev_split,
                                           None if lm else label, where)
    train_ds = splits[train_name]
    text_col, pair_col, label_col = _columns(f"{where}[{train_name}]", train_ds.column_names,
                                             cfg, name, lm)
    names = hub.class_names(train_ds, label_col) if label_col and not lm else None

    def raw(ds: Any, split: str, n: int) -> _Raw:
        missing = [c for c in (text_col, pair_col, label_col) if c and c not in ds.column_names]
        if missing:
            raise DataError(f"{where}[{split}]: no column {missing[0]!r}")
        if label_col and not lm and names:
            keep = [i for i, y in enumerate(ds[label_col]) if y != -1]  # -1: GLUE test rows
            if len(keep) < len(ds):
                ds = ds.select(keep)
            if len(ds) == 0:
                raise DataError(f"{where}[{split}]: no labelled rows; choose another split "
                                "with --dev-split")
        ds = hub.sample(ds, n, cfg.data_seed)
        texts = [t or "" for t in ds[text_col]]
        pairs = [t or "" for t in ds[pair_col]] if pair_col else None
        labels = list(ds[label_col]) if label_col else [""] * len(ds)
        if any(y is None for y in labels):
            raise DataError(f"{where}[{split}]: some rows have no label")
        return _Raw(texts, pairs, labels)

    # Cap before converting (a seeded random subset); when dev is held out of train, the
    # held-out split is random already and load_task's cap takes its first rows.
    train = raw(train_ds, train_name, cfg.train_size if dev_name else 0)
    dev = raw(splits[dev_name], dev_name, cfg.dev_size) if dev_name else None
    files = {**files, "train_split": train_name, "dev_split": dev_name or f"{train_name} "
             f"(held out {cfg.dev_fraction:g})"}
    return _assemble(cfg, name, source, train, dev, names, files, lm, where=where)


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
    return _assemble(cfg, _file_task_name(p), "file", _Raw(lines, None, [""] * len(lines)),
                     None, None, {"train_file": str(p.resolve())}, True, where=str(p))


# --------------------------------------------------------------------------- assembly
def _assemble(cfg: DataConfig, name: str, source: str, train: _Raw, dev: _Raw | None,
              names: tuple[str, ...] | None, files: dict[str, str], lm: bool,
              where: str) -> TaskData:
    if lm:  # a corpus: texts only (empty lines carry nothing to predict)
        def keep(r: _Raw) -> Split:
            idx = [i for i, t in enumerate(r.texts) if t.strip()]
            return Split([r.texts[i] for i in idx], [0] * len(idx),
                         None if r.pairs is None else [r.pairs[i] for i in idx])

        task = _held_out(cfg, TaskData(name, source, ("text",), keep(train),
                                       keep(dev) if dev else Split([], []), files=files), dev)
        task.metric = "perplexity"
        return task
    if dev is not None and (dev.pairs is None) != (train.pairs is None):
        raise DataError(f"{where}: train and dev disagree on sentence pairs")
    regression = is_regression(cfg.metric, name, train.labels)
    if regression:
        classes: tuple[str, ...] = ("score",)
        to_label: Any = scores(where)
    elif names:  # class ids with names (a datasets ClassLabel)
        classes = names
        to_label = class_ids(len(names), where)
    else:
        classes = label_names([str(x) for x in train.labels], where=cfg.task)
        index = {n: i for i, n in enumerate(classes)}

        def to_label(values: list, split: str) -> list[int]:
            unknown = sorted({str(v) for v in values} - set(index))
            if unknown:
                raise DataError(f"{where or split}: labels not seen in training: "
                                f"{unknown[:5]}")
            return [index[str(v)] for v in values]

    def convert(r: _Raw, split: str) -> Split:
        return Split(r.texts, to_label(r.labels, split), r.pairs)

    task = TaskData(name, source, classes, convert(train, "train"),
                    convert(dev, "dev") if dev else Split([], []), files=files,
                    regression=regression)
    task = _held_out(cfg, task, dev)
    task.metric = (regression_metric(cfg.metric, name) if regression
                   else class_metric(cfg.metric, name, task.num_labels))
    return task


def _held_out(cfg: DataConfig, task: TaskData, dev: _Raw | None) -> TaskData:
    """Hold out a seeded ``dev_fraction`` of train when the source has no dev split."""
    if dev is None:
        order = list(range(len(task.train)))
        random.Random(cfg.data_seed).shuffle(order)
        n_dev = max(1, round(cfg.dev_fraction * len(order)))
        task.dev, task.train = task.train.take(order[:n_dev]), task.train.take(order[n_dev:])
    return task


def _file_task_name(path: Path) -> str:
    """``data/sst2/train.tsv`` -> ``sst2``; ``reviews.csv`` -> ``reviews``."""
    if path.stem.lower() in ("train", "training", "data", "all") and path.parent.name:
        return path.resolve().parent.name
    return path.stem


def _split_file(folder: Path, split: str) -> Path | None:
    """``folder/split.{tsv,csv,jsonl,json}``, the first that exists."""
    return next((f for ext in (".tsv", ".csv", ".jsonl", ".json")
                 if (f := folder / f"{split}{ext}").is_file()), None)


def _dir_task_name(path: Path) -> str:
    return path.resolve().name
