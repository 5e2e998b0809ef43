"""Fast bilinear upsampling by an integer factor between pixel-area aligned grids.

A coarse pixel ``j`` covers fine pixels ``j*k .. j*k+k-1``; fine pixel centres sit at coarse
coordinate ``j + (q + 0.5)/k - 0.5`` for phase ``q``. Edges are replicated. Equivalent to
``scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")`` for integer factors (tested),
several times faster because each phase is two scaled slices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def _upsample_axis(array: F32, factor: int, axis: int) -> F32:
    moved = np.moveaxis(array, axis, 0)
    padded = np.concatenate([moved[:1], moved, moved[-1:]], axis=0)
    n = moved.shape[0]
    out = np.empty((n * factor, *moved.shape[1:]), dtype=np.float32)
    centre = padded[1:-1]
    for q in range(factor):
        delta = (q + 0.5) / factor - 0.5
        neighbour = padded[:-2] if delta < 0 else padded[2:]
        w = np.float32(abs(delta))
        out[q::factor] = (np.float32(1.0) - w) * centre + w * neighbour
    return np.moveaxis(out, 0, axis)


def upsample(array: F32, factor: int, shape: tuple[int, int] | None = None) -> F32:
    """Bilinear upsampling of a 2-D float array by ``factor``, cropped to ``shape``."""
    if factor == 1:
        out = np.asarray(array, dtype=np.float32)
    else:
        out = _upsample_axis(
            _upsample_axis(np.asarray(array, dtype=np.float32), factor, 0), factor, 1
        )
    if shape is not None:
        out = out[: shape[0], : shape[1]]
    return np.ascontiguousarray(out)
