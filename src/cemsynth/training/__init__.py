"""Training the cycle-GAN: configuration, one step, the loop, checkpoints, DDP.

The names are imported on first use, so that importing a config module of this package
(for ``--help``) does not import torch. Entry points: :func:`run_training` (``cemsynth train``)
and :func:`load_generator` (a trained LE -> RC generator with the configs it needs; defined,
with the checkpoint format, in :mod:`cemsynth.checkpoint` and repeated here for convenience).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cemsynth.checkpoint import (
        CHECKPOINT_VERSION,
        load_generator,
        read_checkpoint,
    )
    from cemsynth.training.config import (
        RUNTIME_FIELDS,
        TRAIN_PRESETS,
        TrainConfig,
        get_train_preset,
        load_train_config,
        save_train_config,
    )
    from cemsynth.training.loop import (
        TrainResult,
        run_training,
        saved_train_config,
    )
    from cemsynth.training.step import (
        LOSS_NAMES,
        StepNetworks,
        TrainStep,
        make_optimizers,
    )

# Each public name and the module that defines it; imported on first use (see above).
_HOMES = {
    "CHECKPOINT_VERSION": "cemsynth.checkpoint",
    "LOSS_NAMES": "cemsynth.training.step",
    "RUNTIME_FIELDS": "cemsynth.training.config",
    "StepNetworks": "cemsynth.training.step",
    "TRAIN_PRESETS": "cemsynth.training.config",
    "TrainConfig": "cemsynth.training.config",
    "TrainResult": "cemsynth.training.loop",
    "TrainStep": "cemsynth.training.step",
    "get_train_preset": "cemsynth.training.config",
    "load_generator": "cemsynth.checkpoint",
    "load_train_config": "cemsynth.training.config",
    "make_optimizers": "cemsynth.training.step",
    "read_checkpoint": "cemsynth.checkpoint",
    "run_training": "cemsynth.training.loop",
    "save_train_config": "cemsynth.training.config",
    "saved_train_config": "cemsynth.training.loop",
}

__all__ = [
    "CHECKPOINT_VERSION",
    "LOSS_NAMES",
    "RUNTIME_FIELDS",
    "TRAIN_PRESETS",
    "StepNetworks",
    "TrainConfig",
    "TrainResult",
    "TrainStep",
    "get_train_preset",
    "load_generator",
    "load_train_config",
    "make_optimizers",
    "read_checkpoint",
    "run_training",
    "save_train_config",
    "saved_train_config",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
