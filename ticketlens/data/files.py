"""Local task files: CSV, TSV or JSONL with a text (or text pair) column and a label column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ticketlens.core.errors import DataError

TEXT_CANDIDATES = ("text", "sentence", "sentence1", "question", "premise", "content")
PAIR_CANDIDATES = ("text_b", "text_pair", "sentence2", "hypothesis", "question2")


def read_table(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(columns, rows) of a .csv/.tsv/.jsonl file; one clear error for anything unreadable."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file (and not a built-in task: sentiment, agreement, "
                        "paraphrase)")
    suffix = p.suffix.lower()
    try:
        with p.open(encoding="utf-8", newline="") as fh:
            if suffix in (".jsonl", ".json"):
                rows = []
                for i, line in enumerate(fh, 1):
                    if line.strip():
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise DataError(f"{p}: invalid JSON on line {i}: {exc.msg}") \
                                from None
                        if not isinstance(obj, dict):
                            raise DataError(f"{p}:{i}: a JSONL line must be an object")
                        rows.append({k: "" if v is None else str(v) for k, v in obj.items()})
                columns = list(rows[0]) if rows else []
            elif suffix in (".csv", ".tsv", ".txt"):
                delim = "," if suffix == ".csv" else "\t"
                reader = csv.DictReader(fh, delimiter=delim, quoting=csv.QUOTE_NONE
                                        if delim == "\t" else csv.QUOTE_MINIMAL)
                columns = [c.strip() for c in (reader.fieldnames or [])]
                rows = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
            else:
                raise DataError(f"{p}: unknown file type {suffix!r} (use .csv, .tsv or .jsonl)")
    except UnicodeDecodeError:
        raise DataError(f"{p}: not UTF-8 text") from None
    except csv.Error as exc:
        raise DataError(f"{p}: malformed table ({exc})") from None
    if not rows:
        raise DataError(f"{p}: no rows")
    return columns, rows


def pick_column(path: str | Path, columns: list[str], wanted: str,
                candidates: tuple[str, ...], what: str, flag: str) -> str | None:
    if wanted:
        if wanted not in columns:
            raise DataError(f"{path}: no {what} column {wanted!r} (columns: "
                            f"{', '.join(columns)}); choose one with {flag}")
        return wanted
    for c in candidates:
        if c in columns:
            return c
    return None
