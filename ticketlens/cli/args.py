"""CLI flags generated from the config dataclasses, so the two cannot drift (open_lth style)."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from ticketlens.core.config import FindConfig


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, dest_prefix: str) -> None:
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__.replace("Config", "").lower() or "run")
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue
        flag = "--" + f.name.replace("_", "-")
        dest = f"{dest_prefix}{f.name}"
        help_ = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help
        typ = hints[f.name]
        kw: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS}
        if typ is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction,
                               help=f"{help_} (default: {f.default})", **kw)
            continue
        if typing.get_origin(typ) is tuple:
            group.add_argument(flag, action="append", metavar="PATTERN",
                               help=f"{help_}; repeatable", **kw)
            continue
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        group.add_argument(flag, type=typ, metavar=f.name.upper() if "choices" not in kw
                           else None, help=f"{help_} (default: {f.default})", **kw)


def add_find_flags(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(FindConfig):
        sub = typing.get_type_hints(FindConfig)[f.name]
        if dataclasses.is_dataclass(sub):
            add_dataclass_flags(parser, sub, f"{f.name}.")
    add_dataclass_flags(parser, FindConfig, "")


def find_config_from_args(ns: argparse.Namespace) -> FindConfig:
    """Build a :class:`FindConfig` from parsed flags (only flags given override defaults)."""
    values: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in vars(ns).items():
        if "." in key:
            group, name = key.split(".", 1)
            values.setdefault(group, {})[name] = tuple(value) if isinstance(value, list) \
                else value
        elif key in {f.name for f in dataclasses.fields(FindConfig)}:
            top[key] = value
    return FindConfig.from_dict({**values, **top})
