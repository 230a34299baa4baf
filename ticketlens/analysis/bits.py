"""Masks as bit-packed, stratified 64-bit words: the fast form for counting overlaps.

A set of ``m`` masks over the same items becomes a ``(m, W)`` ``uint64`` matrix. Items are
grouped into *strata* (a tensor, or a layer of units); each stratum starts on a word boundary
and is zero-padded, so per-stratum counts are ``popcount(a & b)`` summed over its words.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def _per_stratum(self, words: np.ndarray) -> np.ndarray:
        """Popcounts of ``words`` (..., W) summed per stratum -> (..., S) int64."""
        counts = np.bitwise_count(words)
        return np.add.reduceat(counts, self.offsets, axis=-1, dtype=np.int64)

    def kept(self) -> np.ndarray:
        """(m, S) items kept per mask and stratum."""
        return self._per_stratum(self.words)

    def intersections(self) -> np.ndarray:
        """(m, m, S) items kept by both masks of each pair (diagonal = kept)."""
        m = self.m
        out = np.zeros((m, m, len(self.strata)), dtype=np.int64)
        both = np.empty(self.words.shape[1], dtype=np.uint64)  # reused: no big temporaries
        counts = np.empty(self.words.shape[1], dtype=np.uint8)
        for a in range(m):
            out[a, a] = self._per_stratum(self.words[a])
            for b in range(a + 1, m):
                np.bitwise_and(self.words[a], self.words[b], out=both)
                np.bitwise_count(both, out=counts)
                out[a, b] = out[b, a] = np.add.reduceat(counts, self.offsets, dtype=np.int64)
        return out

    def all_kept(self) -> np.ndarray:
        """(S,) items kept by every mask."""
        return self._per_stratum(np.bitwise_and.reduce(self.words, axis=0))


def _words(packed: np.ndarray) -> np.ndarray:
    pad = (-packed.size) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros(pad, dtype=np.uint8)])
    return packed.view(np.uint64)


def from_packed(masks: Sequence[dict[str, np.ndarray]], sizes: dict[str, int],
                layers: dict[str, int]) -> Bits:
    """From per-stratum ``numpy.packbits`` arrays (the on-disk form): no unpacking."""
    names = list(sizes)
    rows = []
    for mask in masks:
        rows.append(np.concatenate([_words(np.asarray(mask[n], dtype=np.uint8))
                                    for n in names]))
    lengths = [(-(-sizes[n] // 8) + 7) // 8 for n in names]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return Bits(np.stack(rows), offsets, np.array([sizes[n] for n in names], dtype=np.int64),
                tuple(names), np.array([layers.get(n, -1) for n in names]))


def from_bool(masks: Sequence[dict[str, np.ndarray]], layers: dict[str, int]) -> Bits:
    """From boolean arrays keyed by stratum (all masks with the same keys and shapes)."""
    names = list(masks[0])
    packed = [{n: np.packbits(np.asarray(m[n], dtype=bool).reshape(-1)) for n in names}
              for m in masks]
    sizes = {n: int(np.asarray(masks[0][n]).size) for n in names}
    return from_packed(packed, sizes, layers)
