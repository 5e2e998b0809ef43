"""Patch sampler: centres in the breast, determinism, equal flips, padding by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cemsynth.data.patches import CELL, PatchPair, PatchSampler, enhancement_cell_weights


def _source(rows: int = 160, cols: int = 120, seed: int = 0) -> PatchPair:
    rng = np.random.default_rng(seed)
    le = rng.uniform(-1, 1, size=(rows, cols)).astype(np.float32)
    rc = (-le * 0.5).astype(np.float32)  # a known relation between LE and RC
    mask = np.zeros((rows, cols), dtype=bool)
    mask[20:140, 0:70] = True
    return PatchPair(le=le, rc=rc, mask=mask)


def test_shapes_dtype_and_centres_inside_breast() -> None:
    sources = [_source(seed=0), _source(200, 90, seed=1)]
    sampler = PatchSampler(sources, patch_size=32)
    batch = sampler.sample(500, np.random.default_rng(0))
    assert batch.le.shape == batch.rc.shape == (500, 1, 32, 32)
    assert batch.le.dtype == batch.rc.dtype == np.float32
    for (row, col), index in zip(batch.centres, batch.sources, strict=True):
        assert sources[index].mask[row, col]
    assert set(np.unique(batch.sources)) == {0, 1}


def test_same_seed_same_patches_other_seed_differs() -> None:
    sampler = PatchSampler([_source()], patch_size=16)
    a = sampler.sample(50, np.random.default_rng(5))
    b = sampler.sample(50, np.random.default_rng(5))
    c = sampler.sample(50, np.random.default_rng(6))
    np.testing.assert_array_equal(a.le, b.le)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert not np.array_equal(a.centres, c.centres)


def test_flips_are_applied_equally_to_le_and_rc() -> None:
    batch = PatchSampler([_source()], patch_size=16).sample(200, np.random.default_rng(1))
    np.testing.assert_allclose(batch.rc, -0.5 * batch.le, atol=1e-6)
    assert batch.flipped_lr.any() and (~batch.flipped_lr).any()
    assert batch.flipped_ud.any() and (~batch.flipped_ud).any()


def test_patch_is_the_slice_around_its_centre_after_undoing_flips() -> None:
    source = _source()
    sampler = PatchSampler([source], patch_size=8, flip_lr=True, flip_ud=True)
    batch = sampler.sample(100, np.random.default_rng(2))
    padded = np.pad(source.le, 4, mode="reflect")  # the sampler's default padding
    near_border = 0
    for i in range(100):
        row, col = batch.centres[i]
        near_border += not (4 <= row <= 160 - 4 and 4 <= col <= 120 - 4)
        expected = padded[row : row + 8, col : col + 8]  # image rows row-4 .. row+3
        if batch.flipped_lr[i]:
            expected = expected[:, ::-1]
        if batch.flipped_ud[i]:
            expected = expected[::-1, :]
        np.testing.assert_array_equal(batch.le[i, 0], expected)
    # the breast touches the left edge (columns 0-69): a few patches (columns 0-3, about 6%)
    # reach outside the image and are padded; the others are plain slices
    assert 0 < near_border < 20, near_border


def test_padding_modes_by_hand() -> None:
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, 0] = True  # the only centre: the top-left corner
    source = PatchPair(le=image, rc=image, mask=mask)
    rng = np.random.default_rng(0)

    def patch(padding: str) -> np.ndarray:
        sampler = PatchSampler(
            [source], patch_size=4, padding=padding, flip_lr=False, flip_ud=False
        )
        return sampler.sample(1, rng).le[0, 0]

    # rows/cols -2..1 around (0, 0); reflect maps -2 -> 2, -1 -> 1
    reflect_index = [2, 1, 0, 1]
    np.testing.assert_array_equal(patch("reflect"), image[np.ix_(reflect_index, reflect_index)])
    expected_constant = np.full((4, 4), -1.0, dtype=np.float32)
    expected_constant[2:, 2:] = image[:2, :2]
    np.testing.assert_array_equal(patch("constant"), expected_constant)
    np.testing.assert_array_equal(patch("shift"), image)  # moved inside: the whole image

    # with flips on, every patch is the flipped version of the unflipped one
    for padding in ("reflect", "constant", "shift"):
        plain = patch(padding)
        sampler = PatchSampler([source], patch_size=4, padding=padding)
        batch = sampler.sample(16, np.random.default_rng(4))
        assert batch.flipped_lr.any() and batch.flipped_ud.any()
        for i in range(16):
            expected = plain[:, ::-1] if batch.flipped_lr[i] else plain
            expected = expected[::-1, :] if batch.flipped_ud[i] else expected
            np.testing.assert_array_equal(batch.le[i, 0], expected)
            np.testing.assert_array_equal(batch.rc[i, 0], expected)


def test_image_smaller_than_patch_is_padded() -> None:
    source = _source(10, 6)
    source.mask[:] = True
    batch = PatchSampler([source], patch_size=32).sample(5, np.random.default_rng(0))
    assert batch.le.shape == (5, 1, 32, 32)
    assert np.isfinite(batch.le).all()


def test_sparse_mask_falls_back_to_exact_centres() -> None:
    source = _source(300, 300)
    source.mask[:] = False
    source.mask[150, 151] = True
    batch = PatchSampler([source], patch_size=8).sample(10, np.random.default_rng(0))
    assert (batch.centres == [150, 151]).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PatchSampler([])
    with pytest.raises(ValueError, match="padding"):
        PatchSampler([_source()], padding="wrap")
    bad = PatchPair(
        le=np.zeros((4, 4), np.float32), rc=np.zeros((4, 5), np.float32), mask=np.ones((4, 4), bool)
    )
    with pytest.raises(ValueError, match="same shape"):
        PatchSampler([bad])
    empty = _source()
    empty.mask[:] = False
    with pytest.raises(ValueError, match="empty breast mask"):
        PatchSampler([empty]).sample(1, np.random.default_rng(0))


# --- enhancement sampling -----------------------------------------------------------------


def _blob_pair(seed: int) -> PatchPair:
    """A 240 x 200 'breast' of noisy flat RC with one bright 20-pixel blob at (60, 150), and
    a broad bright rim (a halo) along the skin line."""
    rng = np.random.default_rng(seed)
    rows, cols = np.indices((240, 200))
    mask = ((rows - 120) / 115.0) ** 2 + (cols / 195.0) ** 2 < 1.0
    rc = rng.normal(-0.5, 0.2, size=mask.shape).astype(np.float32)
    rc[(rows - 60) ** 2 + (cols - 150) ** 2 < 10**2] += 0.8
    edge = ((rows - 120) / 115.0) ** 2 + (cols / 195.0) ** 2
    rc += np.where(mask, 0.3 * np.clip(edge - 0.6, 0, None) / 0.4, 0).astype(np.float32)
    return PatchPair(le=np.zeros_like(rc), rc=np.where(mask, rc, -1).astype(np.float32), mask=mask)


def test_enhancement_sampling_favours_enhancing_regions_from_the_rc_alone() -> None:
    pair = _blob_pair(0)
    blob_area = (np.indices(pair.mask.shape) - np.array([60, 150])[:, None, None]) ** 2
    near_blob = blob_area.sum(axis=0) < 14**2
    uniform = PatchSampler([pair], patch_size=32, sampling="uniform")
    enhancing = PatchSampler([pair], patch_size=32, sampling="enhancement", boost=8.0)
    shares = []
    for sampler in (uniform, enhancing):
        centres = sampler.sample(4000, np.random.default_rng(1)).centres
        assert pair.mask[centres[:, 0], centres[:, 1]].all()  # always inside the breast
        shares.append(near_blob[centres[:, 0], centres[:, 1]].mean())
    expected = near_blob.sum() / pair.mask.sum()
    assert shares[0] == pytest.approx(expected, abs=0.01)
    assert shares[1] > 5 * shares[0]


def test_enhancement_weights_ignore_the_broad_halo_and_follow_the_boost() -> None:
    pair = _blob_pair(2)
    flat = enhancement_cell_weights(pair.rc, pair.mask, boost=0.0)
    weights = enhancement_cell_weights(pair.rc, pair.mask, boost=8.0)
    cells_per_pixel = flat / CELL**2  # boost 0: weight = breast pixels of the cell
    assert cells_per_pixel.max() <= 1.0 and np.array_equal(flat > 0, weights > 0)
    ratio = np.divide(weights, flat, out=np.zeros_like(weights), where=flat > 0)
    assert ratio.max() <= 1 + 3 * 8.0 + 1e-9
    blob_cell = (60 // CELL, 150 // CELL)
    assert ratio[blob_cell] > 10.0
    rim = np.zeros_like(flat, dtype=bool)  # the halo band: inner edge of the breast outline
    rows, cols = np.indices(flat.shape)
    edge = ((rows * CELL - 120) / 115.0) ** 2 + ((cols * CELL) / 195.0) ** 2
    rim[(edge > 0.75) & (edge < 0.9)] = True
    assert np.median(ratio[rim & (flat > 0)]) < 2.0


def test_enhancement_sampling_is_deterministic() -> None:
    pair = _blob_pair(3)
    first = PatchSampler([pair], 32, sampling="enhancement").sample(50, np.random.default_rng(5))
    again = PatchSampler([pair], 32, sampling="enhancement").sample(50, np.random.default_rng(5))
    assert np.array_equal(first.centres, again.centres)
    with pytest.raises(ValueError, match="sampling must be one of"):
        PatchSampler([pair], 32, sampling="lesions")
