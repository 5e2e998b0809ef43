"""Dense sliding-window inference as pure tiling and blending functions, and the loop over them.

The math (``docs/inference.md`` has it with pictures in words):

- **Window starts** along an axis of length ``L`` with window ``h`` and stride ``s``:
  ``0, s, 2s, ...`` while the window fits, then ``L - h`` (the last window aligned to the
  border) if it is not already a start. This is MONAI's grid for
  ``overlap = 1 - s / h`` (0.875 for 128 / 16).
- **Windows** are every (row start, column start) pair; window ``k`` covers
  ``[r_k, r_k + h) x [c_k, c_k + w)``.
- **Blending**: ``out(p) = sum_k a_k(p) f_k(p) / sum_k a_k(p)`` over the windows ``k`` that
  cover ``p``, where ``f_k`` is the network's output for window ``k`` and ``a_k`` its weight
  map: 1 everywhere for ``"mean"`` (the paper's intensity averaging), a gaussian around the
  window centre for ``"gaussian"``. For mean blending the denominator is the number of windows
  covering ``p``, computed once per grid from the window starts (a 2-D difference array), not
  accumulated window by window.
- **Skipping**: a window that contains no breast pixel is not evaluated. A breast pixel ``p``
  is contained in every window that covers it, so none of its windows is skipped and ``out(p)``
  is unchanged. Pixels that no evaluated window covers get ``fill_value``.
- **Small images**: an axis shorter than the window is padded to the window size (centred, as
  MONAI does) and the result is cropped back.

Memory is bounded: besides the image there are two accumulators of the image's size (the
weighted sum and, for gaussian blending, the weight map) and one batch of windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

from cemsynth.imaging import BoolArray, FloatArray
from cemsynth.inference.config import SlidingWindowConfig

IntArray = npt.NDArray[np.int64]
WindowModel = Callable[[torch.Tensor], torch.Tensor]
"""A network over a batch of windows: float32 ``(n, 1, h, w)`` in, same shape out."""
Pads = tuple[tuple[int, int], tuple[int, int]]


# --- tiling ------------------------------------------------------------------------------


def window_starts(length: int, window: int, stride: int) -> IntArray:
    """Start offsets of the windows along one axis (``length >= window``).

    ``0, stride, 2 * stride, ...`` while the window fits, then ``length - window`` so that the
    last window ends at the border. int64 ``(n,)``, strictly increasing.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if length < window:
        raise ValueError(f"axis of length {length} is shorter than the window {window}; pad it")
    last = length - window
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


@dataclass(frozen=True)
class WindowGrid:
    """The windows that tile an image of ``shape``: every pair of row and column starts.

    Attributes:
        shape: ``(rows, cols)`` of the tiled image (at least the window in both axes).
        window: ``(h, w)`` window size in pixels.
        row_starts, col_starts: int64 start offsets along each axis.
    """

    shape: tuple[int, int]
    window: tuple[int, int]
    row_starts: IntArray
    col_starts: IntArray

    @property
    def n_windows(self) -> int:
        return int(self.row_starts.size * self.col_starts.size)

    def starts(self) -> IntArray:
        """int64 ``(n_windows, 2)`` (row, col) start of each window, row-major order."""
        rows = np.repeat(self.row_starts, self.col_starts.size)
        cols = np.tile(self.col_starts, self.row_starts.size)
        return np.stack([rows, cols], axis=1)


def plan_grid(shape: tuple[int, int], window: int, stride: int) -> WindowGrid:
    """The window grid of an image of ``shape`` (both sides >= ``window``)."""
    rows, cols = shape
    return WindowGrid(
        shape=(int(rows), int(cols)),
        window=(window, window),
        row_starts=window_starts(int(rows), window, stride),
        col_starts=window_starts(int(cols), window, stride),
    )


def pad_amounts(shape: tuple[int, int], window: int) -> Pads:
    """``((top, bottom), (left, right))`` that bring each side up to ``window`` (0 if it is).

    The padding is centred; the odd pixel goes to the bottom/right (as in MONAI).
    """
    pads = []
    for side in shape:
        missing = max(window - int(side), 0)
        pads.append((missing // 2, missing - missing // 2))
    return (pads[0], pads[1])


def pad_image(array: FloatArray, pads: Pads, mode: str, value: float) -> FloatArray:
    """Pad a float32 ``(rows, cols)`` array by ``pads``.

    ``mode``: "reflect" (mirror without repeating the edge pixel; repeated mirroring when the
    pad exceeds the side) or "constant" (``value``). A one-pixel axis is edge-replicated,
    since it has nothing to mirror.
    """
    if pads == ((0, 0), (0, 0)):
        return array
    if mode == "constant":
        return np.pad(array, pads, mode="constant", constant_values=np.float32(value))
    if mode != "reflect":
        raise ValueError(f"unknown pad mode {mode!r}")
    out = array
    for axis in (0, 1):
        axis_pads = [(0, 0), (0, 0)]
        axis_pads[axis] = pads[axis]
        if out.shape[axis] > 1:
            out = np.pad(out, axis_pads, mode="reflect")
        else:
            out = np.pad(out, axis_pads, mode="edge")
    return out.astype(np.float32, copy=False)


def select_windows(mask: BoolArray, starts: IntArray, window: int, margin: int = 0) -> IntArray:
    """Indices of the windows that contain a ``mask`` pixel (within ``margin`` pixels).

    Args:
        mask: bool ``(rows, cols)`` on the tiled grid (e.g. the breast mask).
        starts: int64 ``(n, 2)`` window starts.
        window: window side.
        margin: a window also counts if a mask pixel lies within ``margin`` pixels of it
            (as if the mask were dilated by a square of side ``2 * margin + 1``).

    Returns:
        int64 ``(m,)`` indices into ``starts``, ascending. O(n) after one summed-area table.
    """
    rows, cols = mask.shape
    table = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int64), axis=1, out=table[1:, 1:])
    r0 = np.clip(starts[:, 0] - margin, 0, rows)
    r1 = np.clip(starts[:, 0] + window + margin, 0, rows)
    c0 = np.clip(starts[:, 1] - margin, 0, cols)
    c1 = np.clip(starts[:, 1] + window + margin, 0, cols)
    counts = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return np.flatnonzero(counts > 0).astype(np.int64)


# --- blending weights ----------------------------------------------------------------------


def blend_weights(window: int, mode: str, sigma_fraction: float = 0.125) -> FloatArray:
    """float32 ``(window, window)`` weight map of one window's output.

    "mean": all ones. "gaussian": ``exp(-d^2 / (2 sigma^2))`` with ``d`` the distance from the
    window centre ``((window - 1) / 2, (window - 1) / 2)`` and ``sigma = sigma_fraction *
    window``, scaled to a maximum of 1 (the minimum, at the corners, stays above 0).
    """
    if mode == "mean":
        return np.ones((window, window), dtype=np.float32)
    if mode != "gaussian":
        raise ValueError(f"unknown blend mode {mode!r}")
    sigma = sigma_fraction * window
    offsets = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    profile = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = np.outer(profile, profile)
    return (weights / weights.max()).astype(np.float32)


def window_count_map(shape: tuple[int, int], starts: IntArray, window: int) -> FloatArray:
    """float32 ``shape``: how many of the windows at ``starts`` cover each pixel.

    The denominator of mean blending, computed from the starts alone (a 2-D difference array
    and two cumulative sums), without touching any window's pixels.
    """
    rows, cols = shape
    diff = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    r, c = starts[:, 0], starts[:, 1]
    np.add.at(diff, (r, c), 1)
    np.add.at(diff, (r + window, c), -1)
    np.add.at(diff, (r, c + window), -1)
    np.add.at(diff, (r + window, c + window), 1)
    counts = np.cumsum(np.cumsum(diff, axis=0), axis=1)[:rows, :cols]
    return counts.astype(np.float32)


def weight_map(
    shape: tuple[int, int], starts: IntArray, window: int, weights: FloatArray
) -> FloatArray:
    """float32 ``shape``: the sum of the windows' weight maps ``weights`` at ``starts``."""
    total = np.zeros(shape, dtype=np.float32)
    for r, c in starts:
        total[r : r + window, c : c + window] += weights
    return total


# --- gathering and accumulating ------------------------------------------------------------


def gather_windows(image: torch.Tensor, starts: torch.Tensor, window: int) -> torch.Tensor:
    """Copy the windows at ``starts`` out of ``image`` in one indexing operation.

    Args:
        image: float32 ``(rows, cols)``.
        starts: int64 ``(n, 2)`` on the same device.
        window: window side.

    Returns:
        float32 ``(n, 1, window, window)``, contiguous.
    """
    offsets = torch.arange(window, device=image.device)
    rows = starts[:, 0, None] + offsets  # (n, h)
    cols = starts[:, 1, None] + offsets  # (n, w)
    return image[rows[:, :, None], cols[:, None, :]].unsqueeze(1)


def accumulate_windows(
    total: torch.Tensor, outputs: torch.Tensor, starts: IntArray, weights: torch.Tensor | None
) -> None:
    """Add each window's output (times ``weights``, if given) into ``total`` at its start.

    ``total``: float32 ``(rows, cols)``, updated in place; ``outputs``: ``(n, 1, h, w)``;
    ``starts``: int64 ``(n, 2)``. The windows are added one after the other in order, so
    the sum is deterministic on every device.
    """
    h, w = outputs.shape[-2:]
    values = outputs[:, 0] if weights is None else outputs[:, 0] * weights
    for k, (r, c) in enumerate(starts.tolist()):
        total[r : r + h, c : c + w] += values[k]


# --- the loop ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlidingWindowResult:
    """The blended output and what it took.

    Attributes:
        output: float32 ``(rows, cols)`` (the input's shape) in the model's output domain.
        n_windows: windows in the grid.
        n_evaluated: windows the network saw (the rest contained no mask pixel).
        covered: bool ``(rows, cols)``: pixels at least one evaluated window covers (the
            others hold ``fill_value``).
    """

    output: FloatArray
    n_windows: int
    n_evaluated: int
    covered: BoolArray


def sliding_window_inference(
    image: FloatArray,
    model: WindowModel,
    config: SlidingWindowConfig,
    mask: BoolArray | None = None,
    device: torch.device | str = "cpu",
    workers: int = 1,
) -> SlidingWindowResult:
    """Run ``model`` over dense windows of ``image`` and blend the outputs.

    Args:
        image: float32 ``(rows, cols)`` in the model's input domain (the [-1, 1] LE window).
        model: maps float32 ``(n, 1, h, w)`` on ``device`` to the same shape (any float
            dtype; accumulated in float32). Called under ``torch.inference_mode``.
        config: window, stride, blending, batching, skipping and padding (a window left
            unset is :data:`~cemsynth.vocabulary.PATCH_SIZE`; the predictor sets the
            model's own, :meth:`SlidingWindowConfig.for_model`).
        mask: bool ``(rows, cols)``: the breast. With ``config.skip_background`` only windows
            that touch it are evaluated. None: every window.
        device: where the windows, the network and the accumulators live.
        workers: batches evaluated at the same time, each in its own thread with an equal
            share of torch's CPU threads: two single-threaded batches keep two cores busier
            than one batch split across both, above all when another process takes a core.
            The outputs are added in batch order whatever finishes first, so the result does
            not change.

    Returns:
        The blended float32 image of ``image``'s shape, and counts.
    """
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, cols), got shape {array.shape}")
    if mask is not None and mask.shape != array.shape:
        raise ValueError(f"mask of shape {mask.shape} does not match the image {array.shape}")
    size = config.window_size()
    pads = pad_amounts((array.shape[0], array.shape[1]), size)
    padded = pad_image(array, pads, config.pad_mode, config.pad_value)
    shape = (int(padded.shape[0]), int(padded.shape[1]))
    grid = plan_grid(shape, size, config.stride)
    starts = grid.starts()
    if mask is not None and config.skip_background:
        padded_mask = np.pad(np.asarray(mask, dtype=bool), pads, mode="constant")
        starts = starts[select_windows(padded_mask, starts, size, config.mask_margin)]

    device = torch.device(device)
    weights = blend_weights(size, config.blend, config.gaussian_sigma)
    if config.blend == "mean":
        denominator = window_count_map(shape, starts, size)
        weights_t: torch.Tensor | None = None
    else:
        denominator = weight_map(shape, starts, size, weights)
        weights_t = torch.from_numpy(weights).to(device)

    image_t = torch.from_numpy(padded).to(device)
    total = torch.zeros(shape, dtype=torch.float32, device=device)
    starts_t = torch.from_numpy(starts).to(device)

    def evaluate(chunk: slice) -> torch.Tensor:
        with torch.inference_mode():  # thread-local: entered in the thread that runs
            batch = gather_windows(image_t, starts_t[chunk], size)
            outputs = model(batch)
        if outputs.shape != batch.shape:
            raise ValueError(
                f"the model returned shape {tuple(outputs.shape)} for windows of shape "
                f"{tuple(batch.shape)}; it must keep the shape"
            )
        return outputs.float()

    chunks = [
        slice(begin, begin + config.batch_size)
        for begin in range(0, len(starts), config.batch_size)
    ]
    with torch.inference_mode():
        for chunk, outputs in zip(chunks, _in_order(evaluate, chunks, workers), strict=True):
            accumulate_windows(total, outputs, starts[chunk], weights_t)

    covered = denominator > 0
    result = np.full(shape, np.float32(config.fill_value), dtype=np.float32)
    result[covered] = total.cpu().numpy()[covered] / denominator[covered]
    (top, bottom), (left, right) = pads
    crop = (slice(top, shape[0] - bottom), slice(left, shape[1] - right))
    return SlidingWindowResult(
        output=np.ascontiguousarray(result[crop]),
        n_windows=grid.n_windows,
        n_evaluated=len(starts),
        covered=np.ascontiguousarray(covered[crop]),
    )


def _in_order(
    function: Callable[[slice], torch.Tensor], chunks: list[slice], workers: int
) -> Iterator[torch.Tensor]:
    """``function(chunk)`` for each chunk, in order, computed by up to ``workers`` threads.

    Each worker gets an equal share of torch's CPU threads (at least one). At most
    ``2 * workers`` results are pending at a time (bounded memory).
    """
    if workers <= 1:
        for chunk in chunks:
            yield function(chunk)
        return
    previous = torch.get_num_threads()
    per_worker = max(previous // workers, 1)
    pending: deque[Future[torch.Tensor]] = deque()
    try:
        with ThreadPoolExecutor(
            workers, initializer=torch.set_num_threads, initargs=(per_worker,)
        ) as pool:
            for chunk in chunks:
                pending.append(pool.submit(function, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        torch.set_num_threads(previous)


def single_pass_inference(
    image: FloatArray, model: WindowModel, device: torch.device | str = "cpu"
) -> FloatArray:
    """The whole image through the network at once: a fast preview, NOT the sliding window.

    The generator is fully convolutional, so this runs, but it is not equal to the windowed
    average: instance normalisation sees the whole image's statistics instead of a window's,
    and the borders differ. float32 ``(rows, cols)`` in and out.
    """
    array = np.asarray(image, dtype=np.float32)
    with torch.inference_mode():
        batch = torch.from_numpy(array).to(torch.device(device))[None, None]
        return model(batch).float()[0, 0].cpu().numpy()
