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

**Enhancement sampling** (``sampling="enhancement"``): enhancing lesions cover a small share of
a breast, so uniform centres rarely show the network what it most needs to learn. Here the
centre's image is still drawn uniformly, but the centre itself is drawn in two steps: a cell of
a ``CELL`` x ``CELL`` grid with probability proportional to its breast pixels times
``1 + boost * clip(z - 1, 0, 3)``, then a breast pixel of that cell uniformly. ``z`` is the
cell's local enhancement: the RC image's difference of Gaussians (sigma 4 and 25 model-grid
pixels, computed on the cell grid) over its standard deviation inside the breast. Only the RC
pixels decide (never truth masks), so it works on clinical data; the broad halo and the
thickness roll-off hardly pass the difference of Gaussians.

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
from cemsynth.vocabulary import PATCH_SIZE

PADDING_MODES = ("reflect", "constant", "shift")
SAMPLING_MODES = ("uniform", "enhancement")
CELL = 4
"""Side (pixels) of the cells enhancement sampling weighs."""
ENHANCEMENT_SIGMAS_PX = (4.0, 25.0)
"""Difference-of-Gaussians scales (model-grid pixels) of the local enhancement."""
ENHANCEMENT_BOOST = 4.0
"""Default ``boost``: the most enhancing cells are up to 13 times as likely as the rest."""
_REJECTION_ROUNDS = 8


class PatchSource(Protocol):
    """One cached pair: float32 ``le``/``rc`` in [-1, 1] and a bool breast ``mask``, same shape.

    :class:`cemsynth.preprocess.cache.CachedPair` fits (memory-mapped arrays are fine).
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
        sampling: "uniform" or "enhancement" centres (see the module docstring).
        boost: weight of the local enhancement under "enhancement" sampling.
    """

    def __init__(
        self,
        sources: Sequence[PatchSource],
        patch_size: int = PATCH_SIZE,
        padding: str = "reflect",
        pad_value: float = -1.0,
        flip_lr: bool = True,
        flip_ud: bool = True,
        sampling: str = "uniform",
        boost: float = ENHANCEMENT_BOOST,
    ) -> None:
        if not sources:
            raise ValueError("PatchSampler needs at least one image")
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {', '.join(PADDING_MODES)}, got {padding!r}")
        if patch_size < 1:
            raise ValueError(f"patch_size must be positive, got {patch_size}")
        if sampling not in SAMPLING_MODES:
            raise ValueError(
                f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {sampling!r}"
            )
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
        self.sampling = sampling
        # per image: cumulative cell weights (enhancement sampling), built on first use
        self.boost = float(boost)
        self._cell_cdf: dict[int, npt.NDArray[np.float64]] = {}

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
        """``count`` centres among the mask pixels of image ``index`` (by ``sampling``)."""
        if self.sampling == "enhancement":
            return self._enhancement_centres(index, count, rng)
        return self._uniform_centres(index, count, rng)

    def _enhancement_centres(
        self, index: int, count: int, rng: np.random.Generator
    ) -> npt.NDArray[np.int64]:
        mask = self._mask[index]
        cols = mask.shape[1]
        if index not in self._cell_cdf:
            weights = enhancement_cell_weights(self._rc[index], mask, self.boost)
            total = float(weights.sum())
            if total <= 0:
                raise ValueError(f"image {index} has an empty breast mask; cannot sample patches")
            self._cell_cdf[index] = np.cumsum(weights.ravel() / total)
        cdf = self._cell_cdf[index]
        cell_cols = -(-cols // CELL)
        out = np.empty((count, 2), dtype=np.int64)
        cells = np.minimum(np.searchsorted(cdf, rng.random(count), side="right"), cdf.size - 1)
        for i, cell in enumerate(cells):
            r0, c0 = (int(cell) // cell_cols) * CELL, (int(cell) % cell_cols) * CELL
            block = mask[r0 : r0 + CELL, c0 : c0 + CELL]
            inside = np.flatnonzero(block)  # not empty: cells without breast have weight 0
            pick = int(inside[rng.integers(0, inside.size)])
            out[i] = (r0 + pick // block.shape[1], c0 + pick % block.shape[1])
        return out

    def _uniform_centres(
        self, index: int, count: int, rng: np.random.Generator
    ) -> npt.NDArray[np.int64]:
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


def enhancement_cell_weights(rc: FloatArray, mask: BoolArray, boost: float) -> FloatArray:
    """Sampling weight of each ``CELL`` x ``CELL`` cell: breast pixels x (1 + boost x excess).

    ``rc``: float ``(H, W)`` RC image (any intensity scale); ``mask``: its bool breast mask.
    Returns float64 ``(ceil(H / CELL), ceil(W / CELL))``, 0 where a cell has no breast pixel.
    """
    from scipy import ndimage

    rows, cols = mask.shape
    pad = ((0, -rows % CELL), (0, -cols % CELL))
    inside = np.pad(mask, pad).astype(np.float64)
    values = np.pad(np.where(mask, np.asarray(rc, dtype=np.float64), 0.0), pad)
    shape = (inside.shape[0] // CELL, CELL, inside.shape[1] // CELL, CELL)
    count = inside.reshape(shape).sum(axis=(1, 3))
    total = values.reshape(shape).sum(axis=(1, 3))
    cell_mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    breast = count > 0

    def masked_blur(sigma_px: float) -> npt.NDArray[np.float64]:
        sigma = sigma_px / CELL
        num = ndimage.gaussian_filter(np.where(breast, cell_mean, 0.0), sigma)
        den = ndimage.gaussian_filter(breast.astype(np.float64), sigma)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 1e-6)

    small, large = ENHANCEMENT_SIGMAS_PX
    dog = masked_blur(small) - masked_blur(large)
    spread = float(dog[breast].std()) if breast.any() else 0.0
    z = dog / spread if spread > 0 else np.zeros_like(dog)
    return count * (1.0 + boost * np.clip(z - 1.0, 0.0, 3.0))


def _reflect_indices(indices: npt.NDArray[np.int_], n: int) -> npt.NDArray[np.int_]:
    """Mirror indices into ``[0, n)`` about the edge pixels (numpy "reflect": d c b | a b c d)."""
    if n == 1:
        return np.zeros_like(indices)
    period = 2 * (n - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= n, period - folded, folded)
