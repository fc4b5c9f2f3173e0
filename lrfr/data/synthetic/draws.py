"""Counter-based random numbers: every value SynthFace draws is a pure function of
(seed, stream, first index, second index, column), so an image never depends on the batch it was
rendered in, and the same seed always gives the same bytes."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import ndtri

# Stream tags of the hash: one per kind of draw.
IDENTITY, SIMILAR, CONDITION, HEIGHT, UI, RELIEF = 1, 2, 3, 4, 5, 6
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, stream: int, first: Sequence[int] | np.ndarray, second: Sequence[int] | np.ndarray | int,
             count: int) -> np.ndarray:
    """(N, count) float64 uniforms in [0, 1), a pure function of (seed, stream, first[n], second[n], column)."""
    first = np.asarray(first, dtype=np.int64).astype(np.uint64)
    second = np.broadcast_to(np.asarray(second, dtype=np.int64).astype(np.uint64), first.shape)
    with np.errstate(over="ignore"):
        key = _mix(_mix(_mix(np.full(first.shape, seed, np.uint64) ^ np.uint64(stream << 56)) + first) + second)
        bits = _mix(key[:, None] + np.arange(count, dtype=np.uint64)[None, :] * np.uint64(0x632BE59BD9B4E019))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def normal(u: np.ndarray) -> np.ndarray:
    """Standard normal from uniforms (clipped to +-4 sigma)."""
    return ndtri(np.clip(u, 3e-5, 1 - 3e-5))
