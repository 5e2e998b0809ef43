"""The paper's preprocessing (mask, crop, resample, window), each step with its inverse.

``forward`` takes an LE (and RC) :class:`~cemsynth.imaging.Image` to float32 arrays in
[-1, 1] on the cached grid plus a :class:`PreprocessRecord`; ``inverse`` maps a model output
on that grid back to the original grid in RC stored units.
"""

from cemsynth.preprocess.config import (
    PRESETS,
    PreprocessConfig,
    get_preset,
    load_preprocess_config,
    save_preprocess_config,
)
from cemsynth.preprocess.pipeline import (
    PreprocessedPair,
    PreprocessRecord,
    breast_mask_original,
    forward,
    inverse,
    mask_to_cached_grid,
)

__all__ = [
    "PRESETS",
    "PreprocessConfig",
    "PreprocessRecord",
    "PreprocessedPair",
    "breast_mask_original",
    "forward",
    "get_preset",
    "inverse",
    "load_preprocess_config",
    "mask_to_cached_grid",
    "save_preprocess_config",
]
