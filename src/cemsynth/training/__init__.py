"""Training the cycle-GAN: configuration, one step, the loop, checkpoints, DDP.

Importing this package imports torch. Entry points: :func:`run_training` (``cemsynth train``)
and :func:`load_generator` (a trained LE -> RC generator with the configs it needs).
"""

from cemsynth.training.checkpoint import (
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
from cemsynth.training.loop import TrainResult, run_training, saved_train_config
from cemsynth.training.step import LOSS_NAMES, StepNetworks, TrainStep, make_optimizers

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
