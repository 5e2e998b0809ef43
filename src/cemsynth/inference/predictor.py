"""The predictor: load a model once, then turn LE images into synthetic RC images many times.

One call, for an LE :class:`~cemsynth.imaging.Image` in stored units:

1. check that the image is a low-energy image (not a recombined, high-energy or synthetic one,
   by its DICOM ImageType / SeriesDescription);
2. preprocess it with the model's own :class:`~cemsynth.preprocess.config.PreprocessConfig`
   (breast mask, crop, resample, LE window -> [-1, 1] on the cached grid), and check that the
   model's LE window fits the image's values;
3. run the generator over dense square windows (the model's training patch size, 128 for the
   paper's) with stride 16 and blend the overlaps (:mod:`cemsynth.inference.sliding_window`),
   skipping windows without breast;
4. map the result back with the preprocessing inverse: original pixel grid, RC stored units,
   ``background_value`` outside the breast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cemsynth.errors import InputFileError
from cemsynth.imaging import BoolArray, FloatArray, Image, ImageMeta
from cemsynth.inference.backends import LoadedModel, load_model
from cemsynth.inference.config import MAX_CLIPPED_FRACTION, RuntimeConfig, SlidingWindowConfig
from cemsynth.inference.model import ModelIdentity
from cemsynth.inference.sliding_window import (
    SlidingWindowResult,
    single_pass_inference,
    sliding_window_inference,
)
from cemsynth.preprocess.config import PreprocessConfig
from cemsynth.preprocess.pipeline import (
    PreprocessedPair,
    PreprocessRecord,
    breast_mask_original,
    forward,
    inverse,
)

SYNTHETIC_WORD = "SYNTHETIC"
"""A SeriesDescription with this word marks a synthetic image (cemsynth writes it)."""


@dataclass(frozen=True)
class Prediction:
    """A synthetic RC image and how it was made.

    Attributes:
        image: float32 ``(rows, cols)`` on the LE image's original grid, RC stored units,
            ``background_value`` outside the breast; the LE image's metadata.
        record: the preprocessing record (cached grid, crop, windows).
        n_windows: windows in the grid (0 in preview mode).
        n_evaluated: windows the network saw.
        seconds: wall time per stage: "preprocess", "network", "inverse".
    """

    image: Image
    record: PreprocessRecord
    n_windows: int
    n_evaluated: int
    seconds: dict[str, float] = field(default_factory=dict)


def _source(image: Image) -> Path | str:
    return image.meta.source if image.meta.source is not None else "<LE image>"


def check_low_energy(meta: ImageMeta) -> None:
    """Refuse an image whose DICOM tags (``meta``) say it is not a low-energy image.

    Recombined and high-energy images are recognised by the index's vendor keywords
    (:func:`cemsynth.index.keywords.classify`); synthetic images by ``SYNTHETIC`` in the
    SeriesDescription. Images without such tags (PNG, TIFF, plain DICOM) pass.
    """
    from cemsynth.index.keywords import KIND_NAMES, classify, default_keywords, words

    source = meta.source if meta.source is not None else "<LE image>"
    extra = meta.extra
    description = extra.get("SeriesDescription")
    if description is not None and SYNTHETIC_WORD in words(description):
        raise InputFileError(
            source,
            f"a synthetic image (SeriesDescription '{description}'); predict takes "
            "low-energy images",
        )
    image_type = extra.get("ImageType")
    if image_type is None and description is None:
        return
    found = classify(image_type, description, extra.get("Manufacturer"), default_keywords())
    if found.kind is not None and found.kind != "le":
        raise InputFileError(
            source,
            f"a {KIND_NAMES[found.kind]} image ({found.reason}); predict takes low-energy images",
        )


def clipped_fraction(le_windowed: FloatArray, mask: BoolArray) -> float:
    """Share of mask pixels the LE window clipped (exactly -1 or +1 after windowing)."""
    values = le_windowed[mask]
    if values.size == 0:
        return 0.0
    return float(np.count_nonzero((values <= -1.0) | (values >= 1.0)) / values.size)


def check_intensity_fit(
    image: Image, pair: PreprocessedPair, config: PreprocessConfig, limit: float
) -> None:
    """Refuse an image whose breast values mostly fall outside the model's LE window.

    A model trained on differently scaled images (e.g. 8-bit exports vs 14-bit DICOM) would
    see a flat, clipped breast and return nonsense; the message says what the values are.
    """
    share = clipped_fraction(pair.le, pair.mask.array)
    if share <= limit:
        return
    breast = image.array[breast_mask_original(pair.record).array]
    low, high = np.percentile(breast, [1, 99]) if breast.size else (np.nan, np.nan)
    bits = image.meta.bits_stored
    bits_text = f"{bits}-bit " if bits is not None else ""
    window_low, window_high = config.le_window
    raise InputFileError(
        _source(image),
        f"the model's preprocessing does not fit this image: {share:.0%} of the breast lies "
        f"outside its LE window [{window_low:g}, {window_high:g}] (preset '{config.preset}'); "
        f"this {bits_text}image's breast values are {low:.0f}-{high:.0f} (1st-99th "
        "percentile, stored units). Use a model trained on images like this one",
    )


class Predictor:
    """A loaded generator with its preprocessing, called once per LE image.

    Args:
        model: the loaded network, its preprocessing config and identity
            (:func:`cemsynth.inference.backends.load_model`).
        window: sliding-window settings (default: :class:`SlidingWindowConfig`'s). A window
            size left unset becomes the model's training patch size
            (:meth:`SlidingWindowConfig.for_model`); ``self.window`` always has one.
        preview: run the whole cached image through the network in one pass instead of the
            sliding window (fast, approximate: see
            :func:`~cemsynth.inference.sliding_window.single_pass_inference`).
        max_clipped_fraction: refuse images whose breast is clipped by the LE window more
            often than this.
    """

    def __init__(
        self,
        model: LoadedModel,
        window: SlidingWindowConfig | None = None,
        preview: bool = False,
        max_clipped_fraction: float = MAX_CLIPPED_FRACTION,
    ) -> None:
        self.model = model
        settings = window if window is not None else SlidingWindowConfig()
        self.window = settings.for_model(model.patch_size)
        self.preview = preview
        self.max_clipped_fraction = max_clipped_fraction

    @classmethod
    def load(
        cls,
        model_path: Path | str,
        runtime: RuntimeConfig | None = None,
        window: SlidingWindowConfig | None = None,
        preview: bool = False,
    ) -> Predictor:
        """Load a checkpoint, run folder or exported ONNX file (see :func:`load_model`)."""
        return cls(load_model(model_path, runtime or RuntimeConfig()), window, preview)

    @property
    def preprocess_config(self) -> PreprocessConfig:
        return self.model.preprocess_config

    @property
    def identity(self) -> ModelIdentity:
        return self.model.identity

    def predict_cached(self, le: FloatArray, mask: BoolArray | None) -> SlidingWindowResult:
        """The generator's output on the cached grid: float32 in [-1, 1] (RC window).

        ``le``: float32 ``(rows, cols)`` in [-1, 1] (LE window); ``mask``: its breast mask
        (windows without breast are skipped), or None (every window).
        """
        if self.preview:
            output = single_pass_inference(le, self.model.network, self.model.device)
            covered = np.ones(output.shape, dtype=bool)
            return SlidingWindowResult(output=output, n_windows=0, n_evaluated=0, covered=covered)
        return sliding_window_inference(
            le,
            self.model.network,
            self.window,
            mask=mask,
            device=self.model.device,
            workers=self.model.workers,
        )

    def predict(self, image: Image) -> Prediction:
        """The synthetic RC image of an LE image, with counts and stage timings.

        Args:
            image: LE image, float32 ``(rows, cols)``, ``units="stored"``, with its spacing.

        Returns:
            A :class:`Prediction` whose image is on the original grid in RC stored units.

        Raises:
            InputFileError: not an LE image, no breast found, or the model's preprocessing
                does not fit the image's values.
        """
        if image.units != "stored":
            raise ValueError(f"predict takes stored-unit images, got units {image.units!r}")
        check_low_energy(image.meta)
        config = self.preprocess_config
        start = time.perf_counter()
        pair = forward(image, None, config)
        check_intensity_fit(image, pair, config, self.max_clipped_fraction)
        preprocessed = time.perf_counter()
        result = self.predict_cached(pair.le, pair.mask.array)
        networked = time.perf_counter()
        synthetic = inverse(result.output, pair.record, config)
        done = time.perf_counter()
        return Prediction(
            image=synthetic,
            record=pair.record,
            n_windows=result.n_windows,
            n_evaluated=result.n_evaluated,
            seconds={
                "preprocess": preprocessed - start,
                "network": networked - preprocessed,
                "inverse": done - networked,
            },
        )

    def predict_image(self, image: Image) -> Image:
        """The synthetic RC image (original grid, RC stored units) of an LE image."""
        return self.predict(image).image
