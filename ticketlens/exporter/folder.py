"""The export folder, written whole or not at all: a temporary folder beside the target,
renamed into place when complete (an old folder is renamed away first, deleted after)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ticketlens.core.errors import ConfigError
from ticketlens.core.io import TMP_PREFIX, current_umask


def check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(f"{out}: exists and is not empty (use --overwrite to replace it)")


def temp_folder(out: Path) -> Path:
    """A new empty folder beside ``out`` to write the export into, with the permissions
    ``mkdir`` would give (``0o777 & ~umask``): ``mkdtemp`` makes it ``0o700``, which the
    rename would carry to ``out``, unreadable to the other users of a shared machine."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}.", dir=_parent(out)))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def _parent(out: Path) -> Path:
    parent = out.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``out`` (an old one is renamed away first and deleted
    after, so ``out`` is never half written), its files with the permissions ``open()``
    gives (``0o666 & ~umask``) so that whoever may read the folder may read the model."""
    check_target(out, overwrite)
    for f in tmp.rglob("*"):  # safetensors writes its files 0o600: as open() would
        if f.is_file():
            os.chmod(f, 0o666 & ~current_umask())
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{out.name}.old.", dir=tmp.parent))
            os.replace(out, old / out.name)
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
