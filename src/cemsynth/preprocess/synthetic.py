"""A smooth analytic LE/RC pair for tests and benchmarks (not the physics phantom).

The breast is a half ellipse against the chest wall (column 0), LE values inside vary slowly
around 2350 (the middle of the paper's LE window), the background is 300. The RC image varies
slowly around 2050 everywhere (so interpolation near the skin line only sees smooth values),
which makes ``inverse(forward(x))`` differ from ``x`` by interpolation error alone.
"""

from __future__ import annotations

import numpy as np

from cemsynth.imaging import BoolArray, Image, ImageMeta

LE_BACKGROUND = 300.0


def smooth_breast_pair(
    shape: tuple[int, int] = (400, 320),
    pixel_spacing_mm: tuple[float, float] = (0.1, 0.1),
    noise_std: float = 0.0,
    seed: int = 0,
    laterality: str = "L",
) -> tuple[Image, Image, BoolArray]:
    """LE and RC images (float32 ``shape``, stored units) and the true breast mask.

    Args:
        shape: ``(rows, cols)``.
        pixel_spacing_mm: (row, col) spacing written into the metadata.
        noise_std: Gaussian noise added to the LE image (stored units); 0 for none.
        seed: seeds the noise.
        laterality: "L" or "R" in the metadata (the geometry is the same).
    """
    rows, cols = shape
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float32)
    # wavelengths scale with the image so the content is equally smooth at every size
    scale = np.float32(max(rows, cols) / 100.0)
    inside = ((r - rows / 2) / (rows * 0.42)) ** 2 + (c / (cols * 0.7)) ** 2 < 1.0
    texture = np.sin(r / (12 * scale)) * np.cos(c / (9 * scale))
    le = np.where(inside, 2350.0 + 300.0 * texture, LE_BACKGROUND).astype(np.float32)
    if noise_std > 0:
        rng = np.random.default_rng(seed)
        le += rng.normal(0.0, noise_std, size=shape).astype(np.float32)
    rc = (2050.0 + 200.0 * np.sin(r / (10 * scale) + 1.0) * np.cos(c / (14 * scale))).astype(
        np.float32
    )
    meta = ImageMeta(pixel_spacing_mm=pixel_spacing_mm, laterality=laterality, view="CC")
    return Image(le, meta), Image(rc, meta), inside
