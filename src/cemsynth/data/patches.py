"""Random paired LE/RC training patches whose centre lies inside the breast.

As in the paper, training uses random 128 x 128 patches of the resampled images. Each patch
is drawn in two steps: an image uniformly at random, then a centre pixel uniformly among the
image's breast-mask pixels. For an even size ``p`` the patch covers rows
``r - p/2 ... r + p/2 - 1`` (and likewise columns) around the centre ``(r, c)``.

Near the border the patch reaches outside the (cropped) image. ``padding`` decides what
fills it:

- ``"reflect"`` (default): mirror the image about its edge without repeating the edge pixel
  (numpy's "reflect"), so the patch holds plausible tissue texture rather than a step;
- ``"constant"``: fill with ``pad_value`` (default -1, the bottom of the window, i.e. air);
- ``"shift"``: move the window inward so it lies inside the image (MONAI's behaviour); the
  sampled centre is then still inside the patch but not at its middle. Images smaller than
  the patch are reflect-padded.

Optional flips (left-right, up-down, each with probability 1/2) are applied identically to
the LE and RC patch. Everything random comes from the ``numpy.random.Generator`` passed in;
no global random state is touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from cemsynth.imaging import BoolArray, FloatArray

PATCH_SIZE = 128
PADDING_MODES = ("reflect", "constant", "shift")
_REJECTION_ROUNDS = 8


class PatchSource(Protocol):
    """One cached pair: float32 ``le``/``rc`` in [-1, 1] and a bool breast ``mask``, same shape.

    :class:`cemsynth.io.cache.CachedPair` fits (memory-mapped arrays are fine).
    """

    @property
    def le(self) -> FloatArray: ...

    @property
    def rc(self) -> FloatArray: ...

    @property
    def mask(self) -> BoolArray: ...


@dataclass(frozen=True)
class PatchPair:
    """A simple :class:`PatchSource` made from in-memory arrays."""

    le: FloatArray
    rc: FloatArray
    mask: BoolArray


@dataclass(frozen=True)
class PatchBatch:
    """``n`` paired patches.

    Attributes:
        le, rc: float32 ``(n, 1, size, size)`` in [-1, 1] (the cached intensity domain).
        centres: int64 ``(n, 2)`` sampled centre (row, col) in the source image.
        sources: int64 ``(n,)`` index of the source image.
        flipped_lr, flipped_ud: bool ``(n,)`` which flips were applied.
    """

    le: FloatArray
    rc: FloatArray
    centres: npt.NDArray[np.int64]
    sources: npt.NDArray[np.int64]
    flipped_lr: BoolArray
    flipped_ud: BoolArray


class PatchSampler:
    """Draws paired patches from a list of cached pairs.

    Args:
        sources: the pairs (arrays may be memory maps; they are only read).
        patch_size: side of the square patch in cached-grid pixels.
        padding: "reflect", "constant" or "shift" (see the module docstring).
        pad_value: fill value for "constant", in the [-1, 1] domain.
        flip_lr, flip_ud: random left-right / up-down flips, same for LE and RC.
    """

    def __init__(
        self,
        sources: Sequence[PatchSource],
        patch_size: int = PATCH_SIZE,
        padding: str = "reflect",
        pad_value: float = -1.0,
        flip_lr: bool = True,
        flip_ud: bool = True,
    ) -> None:
        if not sources:
            raise ValueError("PatchSampler needs at least one image")
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {', '.join(PADDING_MODES)}, got {padding!r}")
        if patch_size < 1:
            raise ValueError(f"patch_size must be positive, got {patch_size}")
        for i, source in enumerate(sources):
            if not (source.le.shape == source.rc.shape == source.mask.shape):
                raise ValueError(
                    f"image {i}: le {source.le.shape}, rc {source.rc.shape} and mask "
                    f"{source.mask.shape} must have the same shape"
                )
        # Plain ndarray views of memory maps: same pages, no np.memmap indexing overhead.
        self._le = [np.asarray(source.le) for source in sources]
        self._rc = [np.asarray(source.rc) for source in sources]
        self._mask = [np.asarray(source.mask) for source in sources]
        self.sources = list(sources)
        self.patch_size = patch_size
        self.padding = padding
        self.pad_value = np.float32(pad_value)
        self.flip_lr = flip_lr
        self.flip_ud = flip_ud
        # Exact centre lists are built only for images whose mask is too sparse for
        # rejection sampling (rare: the cached images are cropped to the breast).
        self._fallback: dict[int, npt.NDArray[np.intp]] = {}

    def sample(self, n: int, rng: np.random.Generator) -> PatchBatch:
        """Draw ``n`` patch pairs using ``rng`` only."""
        p = self.patch_size
        sources = rng.integers(0, len(self.sources), size=n).astype(np.int64)
        centres = np.empty((n, 2), dtype=np.int64)
        for index in np.unique(sources):
            chosen = np.flatnonzero(sources == index)
            centres[chosen] = self._centres(int(index), chosen.size, rng)
        flipped_lr = rng.random(n) < 0.5 if self.flip_lr else np.zeros(n, dtype=bool)
        flipped_ud = rng.random(n) < 0.5 if self.flip_ud else np.zeros(n, dtype=bool)
        le = np.empty((n, 1, p, p), dtype=np.float32)
        rc = np.empty((n, 1, p, p), dtype=np.float32)
        pairs = ((le, self._le), (rc, self._rc))
        for i in range(n):
            index = int(sources[i])
            rows, cols = self._le[index].shape
            r0, c0 = self._origin(int(centres[i, 0]), int(centres[i, 1]), rows, cols)
            inside = r0 >= 0 and c0 >= 0 and r0 + p <= rows and c0 + p <= cols
            if inside or self.padding != "constant":
                # one placement (slices, or mirrored index arrays) for both LE and RC
                where: tuple[slice | npt.NDArray[np.intp], slice | npt.NDArray[np.intp]]
                if inside:
                    where = (slice(r0, r0 + p), slice(c0, c0 + p))
                else:
                    where = (
                        _reflect_indices(np.arange(r0, r0 + p), rows)[:, None],
                        _reflect_indices(np.arange(c0, c0 + p), cols)[None, :],
                    )
                for out, images in pairs:
                    patch = images[index][where]
                    if flipped_lr[i]:
                        patch = patch[:, ::-1]
                    if flipped_ud[i]:
                        patch = patch[::-1, :]
                    out[i, 0] = patch
            else:
                rs, cs = slice(max(r0, 0), min(r0 + p, rows)), slice(max(c0, 0), min(c0 + p, cols))
                ts = slice(rs.start - r0, rs.stop - r0)
                tc = slice(cs.start - c0, cs.stop - c0)
                for out, images in pairs:
                    target = out[i, 0]
                    target.fill(self.pad_value)
                    target[ts, tc] = images[index][rs, cs]
                    if flipped_lr[i]:
                        target[:] = target[:, ::-1].copy()
                    if flipped_ud[i]:
                        target[:] = target[::-1, :].copy()
        return PatchBatch(
            le=le,
            rc=rc,
            centres=centres,
            sources=sources,
            flipped_lr=flipped_lr,
            flipped_ud=flipped_ud,
        )

    def _centres(self, index: int, count: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
        """``count`` uniform draws among the mask pixels of image ``index``."""
        mask = self._mask[index]
        rows, cols = mask.shape
        if index not in self._fallback:
            found: list[npt.NDArray[np.int64]] = []
            have = 0
            for _ in range(_REJECTION_ROUNDS):
                draws = max(2 * (count - have), 16)
                r = rng.integers(0, rows, size=draws)
                c = rng.integers(0, cols, size=draws)
                keep = mask[r, c]
                found.append(np.stack([r[keep], c[keep]], axis=1).astype(np.int64))
                have += int(keep.sum())
                if have >= count:
                    return np.concatenate(found)[:count]
            flat = np.flatnonzero(mask)
            if flat.size == 0:
                raise ValueError(f"image {index} has an empty breast mask; cannot sample patches")
            self._fallback[index] = flat
        flat = self._fallback[index]
        chosen = flat[rng.integers(0, flat.size, size=count)]
        return np.stack(np.unravel_index(chosen, (rows, cols)), axis=1).astype(np.int64)

    def _origin(self, row: int, col: int, rows: int, cols: int) -> tuple[int, int]:
        """Top-left corner of the patch around (row, col); "shift" keeps it inside."""
        p = self.patch_size
        r0, c0 = row - p // 2, col - p // 2
        if self.padding == "shift":
            r0 = min(max(r0, 0), max(rows - p, 0))
            c0 = min(max(c0, 0), max(cols - p, 0))
        return r0, c0


def _reflect_indices(indices: npt.NDArray[np.int_], n: int) -> npt.NDArray[np.int_]:
    """Mirror indices into ``[0, n)`` about the edge pixels (numpy "reflect": d c b | a b c d)."""
    if n == 1:
        return np.zeros_like(indices)
    period = 2 * (n - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= n, period - folded, folded)
