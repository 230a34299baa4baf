"""Masks as bit-packed, stratified 64-bit words: the fast form for counting overlaps.

A set of ``m`` masks over the same items becomes a ``(m, W)`` ``uint64`` matrix. Items are
grouped into *strata* (a tensor, or a layer of units); each stratum starts on a word boundary
and is zero-padded, so per-stratum counts are ``popcount(a & b)`` summed over its words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bits:
    words: np.ndarray  # (m, W) uint64
    offsets: np.ndarray  # (S,) first word of each stratum
    sizes: np.ndarray  # (S,) items per stratum
    strata: tuple[str, ...]
    layers: np.ndarray  # (S,) layer of each stratum (-1: none)

    @property
    def m(self) -> int:
        return self.words.shape[0]

    def _spans(self) -> list[tuple[int, int, int]]:
        """(stratum, first word, end word) of each stratum."""
        starts = self.offsets.tolist()
        return list(zip(range(len(starts)), starts, [*starts[1:], self.words.shape[1]]))

    def _per_stratum(self, words: np.ndarray) -> np.ndarray:
        """Popcounts of ``words`` (..., W) summed per stratum -> (..., S) int64 (summed in
        ``uint32``, twice as fast as ``int64``: a stratum holds < 2^32 items)."""
        out = np.empty((*words.shape[:-1], len(self.strata)), dtype=np.int64)
        for s, lo, hi in self._spans():
            out[..., s] = np.bitwise_count(words[..., lo:hi]).sum(axis=-1, dtype=np.uint32)
        return out

    def kept(self) -> np.ndarray:
        """(m, S) items kept per mask and stratum."""
        return self._per_stratum(self.words)

    def intersections(self) -> np.ndarray:
        """(m, m, S) items kept by both masks of each pair (diagonal = kept).

        Stratum by stratum, each mask against all after it at once: the (m, stratum) words
        stay in cache; counts summed in ``uint32`` as in :meth:`_per_stratum`."""
        m = self.m
        out = np.zeros((m, m, len(self.strata)), dtype=np.int64)
        spans = self._spans()
        widest = max((hi - lo for _, lo, hi in spans), default=0)
        both = np.empty((m, widest), dtype=np.uint64)  # reused: no big temporaries
        counts = np.empty((m, widest), dtype=np.uint8)
        for s, lo, hi in spans:
            words = self.words[:, lo:hi]
            for a in range(m):
                b, c = both[: m - a, : hi - lo], counts[: m - a, : hi - lo]
                np.bitwise_and(words[a], words[a:], out=b)
                np.bitwise_count(b, out=c)
                out[a, a:, s] = c.sum(axis=1, dtype=np.uint32)
        upper = np.triu_indices(m, 1)
        out[upper[1], upper[0]] = out[upper]
        return out

    def all_kept(self) -> np.ndarray:
        """(S,) items kept by every mask (stratum by stratum: in cache)."""
        out = np.empty(len(self.strata), dtype=np.int64)
        for s, lo, hi in self._spans():
            every = np.bitwise_and.reduce(self.words[:, lo:hi], axis=0)
            out[s] = np.bitwise_count(every).sum(dtype=np.uint32)
        return out


def _layout(sizes: dict[str, int]) -> np.ndarray:
    """First word of each stratum: ``ceil(items / 64)`` words each."""
    lengths = [(n + 63) // 64 for n in sizes.values()]
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def from_readers(readers: Sequence[Callable[[dict[str, np.ndarray]], None]],
                 sizes: dict[str, int], layers: dict[str, int]) -> Bits:
    """Each reader fills its mask's bit-packed bytes (``numpy.packbits`` per stratum, the
    on-disk form) into the ``uint8`` buffers it is given, which are the rows of the word
    matrix: a mask file read with ``readinto`` lands in place, with no copy."""
    names = list(sizes)
    offsets = _layout(sizes)
    n_words = int(offsets[-1] + (sizes[names[-1]] + 63) // 64) if names else 0
    words = np.zeros((len(readers), n_words), dtype=np.uint64)  # zero padding
    for row, read in zip(words, readers):
        row_bytes = row.view(np.uint8)
        read({n: row_bytes[8 * o: 8 * o + (sizes[n] + 7) // 8]
              for n, o in zip(names, offsets.tolist())})
    return Bits(words, offsets, np.array([sizes[n] for n in names], dtype=np.int64),
                tuple(names), np.array([layers.get(n, -1) for n in names]))


def from_packed(masks: Sequence[dict[str, np.ndarray]], sizes: dict[str, int],
                layers: dict[str, int]) -> Bits:
    """From per-stratum ``numpy.packbits`` arrays (the on-disk form): no unpacking."""

    def copier(mask: dict[str, np.ndarray]) -> Callable[[dict[str, np.ndarray]], None]:
        def read(out: dict[str, np.ndarray]) -> None:
            for n, buf in out.items():
                buf[...] = np.asarray(mask[n], dtype=np.uint8)
        return read

    return from_readers([copier(m) for m in masks], sizes, layers)


def from_bool(masks: Sequence[dict[str, np.ndarray]], layers: dict[str, int]) -> Bits:
    """From boolean arrays keyed by stratum (all masks with the same keys and shapes)."""
    names = list(masks[0])
    packed = [{n: np.packbits(np.asarray(m[n], dtype=bool).reshape(-1)) for n in names}
              for m in masks]
    sizes = {n: int(np.asarray(masks[0][n]).size) for n in names}
    return from_packed(packed, sizes, layers)
