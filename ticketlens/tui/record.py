"""What the TUI reads from a run's typed record (``core.record``) beyond ``Run``'s plain
properties: the verdict, the controls, the task's label names."""

from __future__ import annotations

from typing import Any, NamedTuple

from ticketlens.core.record import Verdict


class ControlPoint(NamedTuple):
    control: str  # random_mask, random_reinit, oneshot
    sparsity: float
    value: float | None  # the run's metric


def verdict(run: Any) -> Verdict | None:
    return run.verdict


def control_points(run: Any) -> list[ControlPoint]:
    """The controls that were run, in the order of the record."""
    return [ControlPoint(c, float(rec.sparsity), run.control_metric(c))
            for c, rec in run.controls.items()]


def label_names(run: Any) -> tuple[str, ...]:
    """The task's label names, by class id (empty when the record has none)."""
    return tuple(run.manifest.task.label_names or ())


def label_name(run: Any, class_id: int) -> str:
    names = label_names(run)
    return names[class_id] if 0 <= class_id < len(names) else f"class {class_id}"


def unknown_words(run: Any, text: str) -> dict[int, str]:
    """Token position -> the word of ``text`` that the run's tokenizer does not know (it
    reads it as its unknown token, ``[UNK]``); empty when the run has no tokenizer file."""
    from ticketlens.data.tokenizer import TextTokenizer

    if not run.paths.tokenizer.is_file():
        return {}
    tok = TextTokenizer.from_file(run.paths.tokenizer).tok
    unk = getattr(tok.model, "unk_token", None) or "[UNK]"
    tok.no_truncation()
    enc = tok.encode(text)
    return {i: text[a:b] for i, (t, (a, b)) in enumerate(zip(enc.tokens, enc.offsets,
                                                             strict=True)) if t == unk}
