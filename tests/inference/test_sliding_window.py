"""Tiling and blending: hand-computed cases, analytic predictors, MONAI's inferer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cemsynth.errors import ConfigError
from cemsynth.inference.config import SlidingWindowConfig
from cemsynth.inference.sliding_window import (
    blend_weights,
    pad_amounts,
    plan_grid,
    select_windows,
    single_pass_inference,
    sliding_window_inference,
    weight_map,
    window_count_map,
    window_starts,
)

MONAI_TOLERANCE = 2e-5
"""Max abs difference from MONAI inside the breast, [-1, 1] RC domain (0.007 RC stored units
for the 700-wide phantom window): float32 rounding of channels-last convolutions and of the
summation order; the windows and weights are the same."""


def times_two(batch: torch.Tensor) -> torch.Tensor:
    return batch * 2


def top_left(batch: torch.Tensor) -> torch.Tensor:
    """Fill each window with its own top-left pixel: the output depends on the window."""
    return batch[:, :, :1, :1].expand_as(batch).clone()


def dyadic_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Multiples of 1/8 in [-1, 1]: sums and halvings of them are exact in float32."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-8, 9, size=shape) / 8.0).astype(np.float32)


def config(**changes: object) -> SlidingWindowConfig:
    """The paper's mean blending unless ``changes`` say otherwise: its sums are exact, so the
    hand cases and analytic predictors can be checked bit for bit."""
    return SlidingWindowConfig(**{"blend": "mean", **changes})  # type: ignore[arg-type]


def test_default_blending_is_gaussian_and_the_papers_mean_stays_available() -> None:
    assert SlidingWindowConfig().blend == "gaussian"
    # the window: the model's training patch size, else the paper's 128
    assert (SlidingWindowConfig().window, SlidingWindowConfig().stride) == (None, 16)
    assert SlidingWindowConfig().window_size() == 128
    assert SlidingWindowConfig().for_model(64).window == 64
    assert SlidingWindowConfig(window=32).for_model(64).window == 32
    with pytest.raises(ConfigError, match="stride 16 is larger than the window 8"):
        SlidingWindowConfig().for_model(8)
    assert SlidingWindowConfig(blend="mean").blend == "mean"


# --- tiling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "window", "stride", "expected"),
    [
        (10, 4, 3, [0, 3, 6]),  # 6 + 4 = 10: the grid ends at the border
        (11, 4, 3, [0, 3, 6, 7]),  # last window moved back to end at the border
        (4, 4, 1, [0]),
        (128, 128, 16, [0]),
        (150, 128, 16, [0, 16, 22]),
    ],
)
def test_window_starts(length: int, window: int, stride: int, expected: list[int]) -> None:
    assert window_starts(length, window, stride).tolist() == expected


def test_window_starts_rejects_short_axis() -> None:
    with pytest.raises(ValueError, match="shorter than the window"):
        window_starts(100, 128, 16)


def test_grid_matches_monai_dense_patch_slices() -> None:
    monai_utils = pytest.importorskip("monai.data.utils", reason="monai is not installed")
    for shape in [(712, 598), (499, 221), (128, 300), (129, 129)]:
        ours = [tuple(s) for s in plan_grid(shape, 128, 16).starts().tolist()]
        theirs = [
            (sl[0].start, sl[1].start)
            for sl in monai_utils.dense_patch_slices(shape, (128, 128), (16, 16))
        ]
        assert ours == theirs


def test_pad_amounts_centre_the_image() -> None:
    assert pad_amounts((100, 128), 128) == ((14, 14), (0, 0))
    assert pad_amounts((55, 300), 128) == ((36, 37), (0, 0))


def test_select_windows_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((60, 50), dtype=bool)
    mask[rng.integers(0, 60, 6), rng.integers(0, 50, 6)] = True
    starts = plan_grid(mask.shape, 16, 5).starts()
    for margin in (0, 2):
        dilated = np.zeros_like(mask)
        for r, c in zip(*np.nonzero(mask), strict=True):
            dilated[max(r - margin, 0) : r + margin + 1, max(c - margin, 0) : c + margin + 1] = 1
        expected = [k for k, (r, c) in enumerate(starts) if dilated[r : r + 16, c : c + 16].any()]
        assert select_windows(mask, starts, 16, margin).tolist() == expected


# --- blending -------------------------------------------------------------------------------


def test_four_by_four_with_three_by_three_windows_by_hand() -> None:
    """4 windows start at (0,0), (0,1), (1,0), (1,1); each outputs its top-left pixel."""
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    result = sliding_window_inference(image, top_left, config(window=3, stride=1))
    # pixel (r, c) averages the windows covering it: 4 * mean(row starts) + mean(col starts)
    expected = np.array(
        [
            [0.0, 0.5, 0.5, 1.0],
            [2.0, 2.5, 2.5, 3.0],
            [2.0, 2.5, 2.5, 3.0],
            [4.0, 4.5, 4.5, 5.0],
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(result.output, expected)
    assert (result.n_windows, result.n_evaluated) == (4, 4)
    counts = window_count_map((4, 4), plan_grid((4, 4), 3, 1).starts(), 3)
    np.testing.assert_array_equal(counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


@pytest.mark.parametrize("predictor", [times_two, lambda b: b + 1])
def test_analytic_predictor_is_exact(predictor: object) -> None:
    image = dyadic_image((300, 200))
    result = sliding_window_inference(image, predictor, config(batch_size=7))  # type: ignore[arg-type]
    expected = predictor(torch.from_numpy(image)).numpy()  # type: ignore[operator]
    np.testing.assert_array_equal(result.output, expected)
    assert result.covered.all()


def test_count_map_equals_accumulated_ones() -> None:
    starts = plan_grid((300, 200), 128, 16).starts()
    ones = blend_weights(128, "mean")
    np.testing.assert_array_equal(
        window_count_map((300, 200), starts, 128), weight_map((300, 200), starts, 128, ones)
    )


def test_batch_size_does_not_change_the_result() -> None:
    image = dyadic_image((200, 170), seed=3)
    outputs = [
        sliding_window_inference(image, top_left, config(batch_size=b)).output for b in (1, 5, 64)
    ]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_array_equal(outputs[0], outputs[2])


def test_gaussian_blending_of_analytic_predictor() -> None:
    image = dyadic_image((260, 190), seed=4)
    weights = blend_weights(128, "gaussian", 0.125)
    assert weights.max() == 1.0 and weights.min() > 0
    assert weights[63, 64] == weights[64, 63]  # symmetric about the window centre
    result = sliding_window_inference(image, times_two, config(blend="gaussian"))
    np.testing.assert_allclose(result.output, 2 * image, atol=1e-6)
    # a window-dependent predictor: gaussian and mean blends differ, both are convex mixtures
    gauss = sliding_window_inference(image, top_left, config(blend="gaussian")).output
    mean = sliding_window_inference(image, top_left, config()).output
    assert not np.allclose(gauss, mean)
    assert gauss.min() >= image.min() and gauss.max() <= image.max()


# --- skipping, padding ----------------------------------------------------------------------


def test_skipping_background_windows_keeps_the_breast_exact() -> None:
    image = dyadic_image((400, 300), seed=5)
    mask = np.zeros(image.shape, dtype=bool)
    mask[150:380, 0:120] = True  # a breast at the left edge
    everything = sliding_window_inference(image, top_left, config(skip_background=False), mask)
    skipped = sliding_window_inference(image, top_left, config(mask_margin=0), mask)
    assert skipped.n_evaluated < everything.n_evaluated == everything.n_windows
    np.testing.assert_array_equal(skipped.output[mask], everything.output[mask])
    assert skipped.covered[mask].all()
    assert not skipped.covered.all()
    np.testing.assert_array_equal(skipped.output[~skipped.covered], -1.0)


def test_mask_margin_keeps_the_pixels_next_to_the_breast_exact() -> None:
    image = dyadic_image((400, 300), seed=6)
    mask = np.zeros(image.shape, dtype=bool)
    mask[200:260, 20:90] = True
    ring = np.zeros_like(mask)
    ring[198:262, 18:92] = True  # two pixels around the mask
    full = sliding_window_inference(image, top_left, config(skip_background=False), mask).output
    near = sliding_window_inference(image, top_left, config(mask_margin=2), mask).output
    np.testing.assert_array_equal(near[ring], full[ring])


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_image_smaller_than_the_window(mode: str) -> None:
    image = dyadic_image((55, 100), seed=7)
    result = sliding_window_inference(image, times_two, config(pad_mode=mode))
    assert result.output.shape == image.shape
    assert result.n_windows == 1
    np.testing.assert_array_equal(result.output, 2 * image)


def test_padding_is_seen_by_the_model() -> None:
    """The padded pixels reach the network: constant padding with 5 shows up in its mean."""
    image = np.zeros((64, 64), dtype=np.float32)

    def window_mean(batch: torch.Tensor) -> torch.Tensor:
        return batch.mean(dim=(2, 3), keepdim=True).expand_as(batch).clone()

    out = sliding_window_inference(
        image, window_mean, config(pad_mode="constant", pad_value=5.0)
    ).output
    np.testing.assert_allclose(out, 5.0 * (1 - 64 * 64 / 128**2))


def test_model_must_keep_the_shape() -> None:
    with pytest.raises(ValueError, match="must keep the shape"):
        sliding_window_inference(
            np.zeros((130, 130), np.float32), lambda b: b[..., :64, :64], config()
        )


def test_single_pass_runs_the_whole_image() -> None:
    image = dyadic_image((90, 70))
    np.testing.assert_array_equal(single_pass_inference(image, times_two), 2 * image)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stride": 200, "window": 128}, "larger than the window"),
        ({"blend": "median"}, "unknown blend mode"),
        ({"pad_mode": "wrap"}, "unknown pad mode"),
        ({"batch_size": 0}, "positive integer"),
    ],
)
def test_config_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**changes)


# --- the real network against MONAI ---------------------------------------------------------


def test_equals_monai_inside_the_breast(phantom_exam: object, tiny_run: object) -> None:
    """Same model, same uncropped phantom frame (a 320 x 448 part of it, with background at
    the left): ours (skipping background windows, channels-last) equals MONAI's
    sliding_window_inference(roi 128, overlap 0.875, mode constant) inside the breast."""
    monai_inferers = pytest.importorskip("monai.inferers", reason="monai is not installed")
    from pathlib import Path

    from cemsynth.checkpoint import load_generator
    from cemsynth.inference.backends import TorchWindowModel
    from cemsynth.io.reader import read_image
    from cemsynth.preprocess.intensity import window
    from cemsynth.preprocess.mask import breast_mask

    assert isinstance(phantom_exam, Path) and isinstance(tiny_run, Path)
    checkpoint = load_generator(tiny_run)
    le = read_image(phantom_exam / "P0001" / "R_CC_LE.dcm")
    part = (slice(100, 420), slice(150, 598))
    mask = np.ascontiguousarray(breast_mask(le.array, source="test")[0][part])
    frame = np.ascontiguousarray(window(le.array, *checkpoint.preprocess_config.le_window)[0][part])
    ours_model = TorchWindowModel(checkpoint.generator, torch.device("cpu"), "fp32", True)
    ours = sliding_window_inference(frame, ours_model, config(batch_size=32), mask)
    assert ours.n_evaluated < ours.n_windows  # background windows were skipped

    plain = load_generator(tiny_run).generator
    with torch.inference_mode():
        theirs = monai_inferers.sliding_window_inference(
            torch.from_numpy(frame)[None, None],
            roi_size=128,
            sw_batch_size=32,
            predictor=plain,
            overlap=0.875,
            mode="constant",
        )[0, 0].numpy()
    difference = np.abs(ours.output - theirs)[mask]
    assert difference.max() <= MONAI_TOLERANCE


def test_concurrent_workers_give_the_same_result() -> None:
    """Batches run in two threads are still added in batch order: bitwise the same sum."""
    image = dyadic_image((300, 260), seed=8)
    one = sliding_window_inference(image, top_left, config(batch_size=3), workers=1)
    two = sliding_window_inference(image, top_left, config(batch_size=3), workers=2)
    np.testing.assert_array_equal(one.output, two.output)
    assert torch.get_num_threads() == 1  # the fixture's setting came back after the pool
