"""Hugging Face ``datasets`` as task sources: hub names and folders saved with
``save_to_disk``. ``datasets`` is an optional dependency (``pip install 'ticketlens[hub]'``).

Names: ``glue/<task>`` (GLUE on the hub, ``nyu-mll/glue`` with that config), ``owner/name``,
``name``, and ``<name>:<config>`` (e.g. ``wikitext:wikitext-2-raw-v1``). When the hub cannot be
reached the dataset is read from the local ``datasets`` cache, or one clear line says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketlens.core.errors import DataError, first_line
from ticketlens.core.hub import hub_offline

GLUE_REPO = "nyu-mll/glue"
# (text column, pair column) of every GLUE task: QNLI puts the question first, so candidate
# lists alone would pick the wrong pair.
GLUE_COLUMNS: dict[str, tuple[str, str | None]] = {
    "cola": ("sentence", None), "sst2": ("sentence", None),
    "mrpc": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"), "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"), "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"), "ax": ("premise", "hypothesis"),
}
DEV_SPLITS = ("validation", "validation_matched", "dev", "valid", "test")
_NAME_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(:[\w.-]+)?$")


@dataclass(frozen=True)
class DatasetName:
    path: str
    config: str | None

    @property
    def task_name(self) -> str:
        """What the run calls the task: the config (``sst2``) or the dataset's own name."""
        return self.config or self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.path + (f":{self.config}" if self.config else "")


def parse_name(task: str) -> DatasetName | None:
    """``glue/sst2`` -> (nyu-mll/glue, sst2); ``owner/name:config``; None if not a name."""
    if not _NAME_RE.match(task):
        return None
    name, _, config = task.partition(":")
    head, _, tail = name.partition("/")
    if head.lower() == "glue" and tail.lower() in GLUE_COLUMNS and not config:
        return DatasetName(GLUE_REPO, tail.lower())
    return DatasetName(name, config or None)


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in
                                 ("dataset_dict.json", "dataset_info.json", "state.json"))


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError("Hugging Face datasets need the `datasets` package: "
                        "pip install 'ticketlens[hub]'") from None
    return datasets


@contextmanager
def quiet_and_offline(datasets: Any, offline: bool) -> Iterator[None]:
    """For one call: ``datasets``' logging at errors only, and, when ``offline``,
    ``huggingface_hub`` and ``datasets`` in offline mode (both read ``HF_HUB_OFFLINE`` once,
    at import). Everything is put back afterwards: no process-wide setting is left changed."""
    from huggingface_hub import constants

    level = datasets.logging.get_verbosity()
    targets = [constants, getattr(datasets, "config", datasets)] if offline else []
    saved = [getattr(t, "HF_HUB_OFFLINE", False) for t in targets]
    try:
        datasets.logging.set_verbosity_error()
        for t in targets:
            t.HF_HUB_OFFLINE = True
        yield
    finally:
        for t, v in zip(targets, saved):
            t.HF_HUB_OFFLINE = v
        datasets.logging.set_verbosity(level)


def load_hub(name: DatasetName, offline: Callable[[], bool] = hub_offline) -> dict[str, Any]:
    """{split: datasets.Dataset} of a hub dataset (from the local cache when ``offline()``:
    the caller's probe of the hub, asked once)."""
    datasets = _datasets()
    try:
        with quiet_and_offline(datasets, offline()):
            dd = datasets.load_dataset(name.path, name.config)
    except ConnectionError:
        raise DataError(f"dataset {name} is not in the local datasets cache and the Hugging "
                        "Face hub cannot be reached (offline?)") from None
    except FileNotFoundError as exc:
        raise DataError(f"no dataset {name} ({first_line(exc)})") from None
    except ValueError as exc:  # e.g. an unknown config: the message lists the available ones
        raise DataError(f"dataset {name}: {first_line(exc)}") from None
    except Exception as exc:  # DatasetNotFoundError and friends have no common base
        raise DataError(f"dataset {name} could not be loaded ({type(exc).__name__}: "
                        f"{first_line(exc)})") from None
    return dict(dd)


def load_saved(path: Path) -> dict[str, Any]:
    """{split: Dataset} of a folder written by ``save_to_disk`` (a single Dataset is 'train')."""
    datasets = _datasets()
    try:
        with quiet_and_offline(datasets, offline=False):
            obj = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"{path}: not a saved dataset ({first_line(exc)})") from None
    return dict(obj) if isinstance(obj, datasets.DatasetDict) else {"train": obj}


def pick_splits(splits: dict[str, Any], train: str, dev: str, label: str | None,
                where: str) -> tuple[str, str | None]:
    """(train split, dev split or None to hold out part of train). ``dev='auto'`` takes the
    first labelled one of validation, validation_matched, dev, valid, test (GLUE's test
    labels are all -1, so its test split is skipped)."""
    if train not in splits:
        raise DataError(f"{where}: no split {train!r} (splits: {', '.join(splits)}); choose "
                        "one with --train-split")
    if dev != "auto":
        if dev not in splits:
            raise DataError(f"{where}: no split {dev!r} (splits: {', '.join(splits)}); "
                            "choose one with --dev-split")
        return train, dev
    for candidate in DEV_SPLITS:
        if candidate in splits and candidate != train and _labelled(splits[candidate], label):
            return train, candidate
    return train, None


def _labelled(ds: Any, label: str | None) -> bool:
    if label is None:
        return True
    if label not in ds.column_names or len(ds) == 0:
        return False
    return any(v != -1 for v in ds.select(range(min(1000, len(ds))))[label])


def class_names(ds: Any, label: str) -> tuple[str, ...] | None:
    """The names of a ClassLabel column (in id order), else None."""
    feature = ds.features.get(label)
    names = getattr(feature, "names", None)
    return tuple(names) if names else None


def sample(ds: Any, n: int, seed: int) -> Any:
    """At most ``n`` rows, a seeded random subset (hub datasets are often sorted by label)."""
    if not n or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))
