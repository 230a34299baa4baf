"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A crash therefore leaves either the old file or the new one, never a half-written file under
the final name (a leftover ``.tmp-*`` file is ignored by every reader).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ticketlens.core import fault

TMP_PREFIX = ".tmp-"  # the temp files' names: ``.tmp-NAME.RANDOM`` beside ``NAME``


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    import tempfile  # here: reading runs never writes

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        fault.point("write", path)  # TICKETLENS_FAULT=kill:write:N (tests): dies here
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; use what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_bytes(obj: Any) -> bytes:
    """The bytes every JSON file of a run is written as (indented, UTF-8, a final newline)."""
    return (json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n").encode("utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(path, json_bytes(obj))


def current_umask() -> int:
    """The process's umask (``os.umask`` can only be read by setting it: set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# safetensors dtype names of the numpy dtypes we write
_ST_DTYPES = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "int32": "I32",
              "int64": "I64", "uint16": "U16", "uint32": "U32", "uint64": "U64",
              "float16": "F16", "float32": "F32", "float64": "F64"}


def safetensors_bytes(arrays: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> bytes:
    """A safetensors file whose bytes depend only on its content.

    ``safetensors.numpy.save`` writes the metadata from a hash map, so its order (and the
    file's bytes) differ between processes; here the metadata keys and the tensors are
    written in sorted order, the header is compact JSON padded with spaces to 8 bytes (as
    safetensors pads), and the data follows in the same order. Readable by ``safe_open``.
    """
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    chunks, offset = [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.str[0] == ">":  # safetensors is little-endian
            a = a.astype(a.dtype.newbyteorder("<"))
        data = a.tobytes()
        header[name] = {"dtype": _ST_DTYPES[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)
