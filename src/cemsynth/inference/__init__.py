"""Full-image synthesis: dense sliding window, the predictor, DICOM/PNG/TIFF outputs, export.

Entry points: :class:`Predictor` (load a model once, call :meth:`Predictor.predict_image` per
LE image; ``cemsynth predict``), :func:`sliding_window_inference` (the pure tiling and
blending loop) and :func:`export_model` (``cemsynth export``). ``docs/inference.md`` describes
the math and the outputs. The names are imported on first use, so that importing
:mod:`cemsynth.inference.config` (the defaults, for ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cemsynth.inference.backends import LoadedModel, load_model
    from cemsynth.inference.config import RuntimeConfig, SlidingWindowConfig
    from cemsynth.inference.export import export_model
    from cemsynth.inference.model import ModelIdentity
    from cemsynth.inference.predictor import Prediction, Predictor
    from cemsynth.inference.sliding_window import (
        SlidingWindowResult,
        single_pass_inference,
        sliding_window_inference,
    )

_HOMES = {
    "LoadedModel": "backends",
    "ModelIdentity": "model",
    "load_model": "backends",
    "RuntimeConfig": "config",
    "SlidingWindowConfig": "config",
    "export_model": "export",
    "Prediction": "predictor",
    "Predictor": "predictor",
    "SlidingWindowResult": "sliding_window",
    "single_pass_inference": "sliding_window",
    "sliding_window_inference": "sliding_window",
}

__all__ = [
    "LoadedModel",
    "ModelIdentity",
    "Prediction",
    "Predictor",
    "RuntimeConfig",
    "SlidingWindowConfig",
    "SlidingWindowResult",
    "export_model",
    "load_model",
    "single_pass_inference",
    "sliding_window_inference",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
