"""Training configuration: the one home of every training default, and the presets.

:class:`TrainConfig` holds the architecture (a nested :class:`~cemsynth.models.ModelConfig`),
data, optimiser, loss weights, validation, logging and runtime settings. A YAML file
(``cemsynth train --config train.yaml``) holds any subset of the fields plus an optional
``preset`` name; the preset gives the starting values, the file's keys override them, and a
nested ``model:`` mapping overrides single architecture fields::

    preset: small
    batch_size: 8
    max_steps: 2000
    model:
      gen_residual_blocks: 6

The paper's values (Methods, "Cycle-GAN"): Adam with learning rate 2e-4 for generators and
discriminators, batch 20, about 6000 iterations, 128 x 128 patches. The paper does not give
Adam's betas; 0.5 / 0.999 are the CycleGAN and DCGAN values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from cemsynth.config_files import ConfigFile
from cemsynth.data.patches import ENHANCEMENT_BOOST, PADDING_MODES, SAMPLING_MODES
from cemsynth.devices import DEVICES
from cemsynth.errors import ConfigError
from cemsynth.models.config import MODEL_PRESETS, ModelConfig
from cemsynth.vocabulary import PATCH_SIZE

if TYPE_CHECKING:
    from cemsynth.losses import LossWeights

TRAIN_CONFIG_VERSION = 1
"""Bump when the meaning of a field changes; reading refuses newer versions."""

SAMPLINGS = SAMPLING_MODES
PRECISIONS = ("auto", "fp32", "bf16")

RUNTIME_FIELDS = frozenset(
    {
        "max_steps",
        "device",
        "precision",
        "channels_last",
        "compile",
        "deterministic",
        "tensorboard",
        "log_every",
        "val_every",
        "checkpoint_every",
    }
)
"""Fields that ``--resume`` may change; the others must match the run being resumed."""


@dataclass(frozen=True)
class TrainConfig(ConfigFile):
    """Everything ``cemsynth train`` needs besides the cache and the output folder.

    Attributes:
        preset: Name of the preset these values started from (a label).
        model: The architecture.
        seed: Seeds weight initialisation, patch sampling (one stream per DDP rank) and the
            fixed validation patches.
        batch_size: Patches per step over all DDP ranks together (each rank takes
            ``batch_size / world_size``; must divide). The paper: 20.
        patch_size: Side of the square training patches in cached-grid pixels (the paper: 128).
        padding: How patches reaching outside the image are filled: "reflect", "constant"
            (-1, air) or "shift" (see :mod:`cemsynth.data.patches`).
        flip_lr, flip_ud: Random left-right / up-down flips (the same for LE and RC).
        sampling: Where patch centres fall inside the breast: "uniform" (the paper) or
            "enhancement": more often where the RC image is locally brighter than its
            surroundings (chosen from the RC pixels alone, never from truth masks, so it works
            on clinical data; see :mod:`cemsynth.data.patches`).
        sampling_boost: How much more likely the most enhancing pixels are than the rest
            under "enhancement" sampling (at most ``1 + 3 * boost`` times).
        max_steps: Total training steps (one step updates generators and discriminators);
            with ``--resume`` the run continues up to this step. The paper: about 6000.
        lr_generator, lr_discriminator: Adam learning rates (the paper: 2e-4 for both),
            constant over the run.
        adam_beta1, adam_beta2: Adam's moment decay rates.
        reverse_generator: Train the RC -> LE generator too (the cycle-GAN). False trains the
            LE -> RC generator alone (supervised; needs ``loss_cycle`` 0); with
            ``loss_adversarial`` 0 no discriminator runs either.
        grad_clip_norm: Clip the generators' gradient to this total L2 norm before each
            update (0: off, the paper's setting). A normalisation-free network at a high
            learning rate can take one huge step and never recover; clipping prevents it.
        ema_decay: Keep an exponential moving average of the LE -> RC generator's weights
            with this decay per step (0: off, the paper's setting). When on, validation,
            ``best.pt`` and inference use the averaged weights: a short or high-learning-rate
            GAN run swings from step to step, the average does not. Early steps use
            ``min(ema_decay, (1 + step) / (10 + step))`` so the average forgets the random
            initial weights quickly.
        loss_adversarial: Weight of the least-squares adversarial term (per direction).
        loss_cycle: Weight of the cycle term (LE -> RC -> LE and RC -> LE -> RC).
        loss_identity: Weight of the identity term (g_le_to_rc(RC) ~ RC and the reverse);
            the paper's "lambda loss term of ten in the overall identity loss".
        loss_paired: Weight of the supervised term: g_le_to_rc(LE) ~ RC and g_rc_to_le(RC) ~ LE
            with the same MAE/SSIM mix as the cycle term (the paper trains on pairs).
        loss_mae, loss_ssim: The mix inside the cycle and paired terms:
            ``loss_mae * MAE + loss_ssim * (1 - SSIM)`` (the paper: equal weights).
        loss_enhancement: Weight the LE -> RC paired MAE per pixel towards enhancing pixels
            of the RC target (0: off, the paper's plain MAE): ``1 + loss_enhancement *
            clip(z - enhancement_z, 0, 3)``, z the RC's local excess over its surroundings in
            units of its spread, from the RC alone (see
            :func:`cemsynth.losses.enhancement_weights`; measured in docs/results.md, "Tried,
            not adopted").
        enhancement_z: The z above which ``loss_enhancement`` starts to weigh.
        val_every: Validate (and maybe write ``best.pt``) every this many steps and at the end.
        val_patches: Fixed validation patches drawn once from the val split's images.
        log_every: Steps per row of the training log (losses averaged over the row's steps).
        checkpoint_every: Write ``last.pt`` every this many steps (and at the end).
        device: "auto" (CUDA if available), "cpu" or "cuda".
        precision: "fp32", "bf16" (autocast to bfloat16) or "auto" (bf16 on CUDA, fp32 on CPU).
        channels_last: Networks and batches in channels-last memory format.
        compile: Compile the networks with ``torch.compile``.
        deterministic: Ask torch for deterministic kernels (and turn off cuDNN autotuning).
            CPU runs are bitwise reproducible without it.
        tensorboard: Also write TensorBoard event files (when ``tensorboard`` is installed).
    """

    KIND = "training"
    VERSION = TRAIN_CONFIG_VERSION

    preset: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    seed: int = 0
    # data
    batch_size: int = 20
    patch_size: int = PATCH_SIZE
    padding: str = "reflect"
    flip_lr: bool = True
    flip_ud: bool = True
    sampling: str = "uniform"
    sampling_boost: float = ENHANCEMENT_BOOST
    # optimisation
    max_steps: int = 6000
    lr_generator: float = 2e-4
    lr_discriminator: float = 2e-4
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    grad_clip_norm: float = 0.0
    ema_decay: float = 0.0
    reverse_generator: bool = True
    # generator objective
    loss_adversarial: float = 1.0
    loss_cycle: float = 10.0
    loss_identity: float = 10.0
    loss_paired: float = 10.0
    loss_mae: float = 0.5
    loss_ssim: float = 0.5
    loss_enhancement: float = 0.0
    enhancement_z: float = 1.0
    # validation, logs, checkpoints
    val_every: int = 250
    val_patches: int = 64
    log_every: int = 10
    checkpoint_every: int = 250
    # runtime
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = False
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):  # from YAML
            object.__setattr__(self, "model", ModelConfig.from_dict(self.model))
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(
                f"model must be a mapping of architecture settings, got {self.model!r}"
            )
        for name in (
            "batch_size",
            "patch_size",
            "max_steps",
            "val_every",
            "val_patches",
            "log_every",
            "checkpoint_every",
        ):
            _check_int(name, getattr(self, name), minimum=0 if name == "val_patches" else 1)
        _check_int("seed", self.seed, minimum=0)
        if self.patch_size < 16:
            raise ConfigError(
                f"patch_size must be at least 16 (the discriminator halves it 3 times), "
                f"got {self.patch_size}"
            )
        for name in (
            "lr_generator",
            "lr_discriminator",
            "loss_adversarial",
            "loss_cycle",
            "loss_identity",
            "loss_paired",
            "loss_mae",
            "loss_ssim",
            "loss_enhancement",
            "sampling_boost",
            "grad_clip_norm",
        ):
            object.__setattr__(self, name, _check_float(name, getattr(self, name), minimum=0.0))
        object.__setattr__(
            self, "enhancement_z", _check_float("enhancement_z", self.enhancement_z, None)
        )
        for name in ("adam_beta1", "adam_beta2", "ema_decay"):
            value = _check_float(name, getattr(self, name), minimum=0.0)
            if value >= 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
            object.__setattr__(self, name, value)
        for name, choices in (
            ("sampling", SAMPLINGS),
            ("padding", PADDING_MODES),
            ("device", DEVICES),
            ("precision", PRECISIONS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        for name in (
            "flip_lr",
            "flip_ud",
            "reverse_generator",
            "channels_last",
            "compile",
            "deterministic",
            "tensorboard",
        ):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")

        if not self.reverse_generator and self.loss_cycle > 0:
            raise ConfigError(
                "reverse_generator false needs loss_cycle 0 (the cycle needs both generators)"
            )

    def loss_weights(self) -> LossWeights:
        from cemsynth.losses import LossWeights  # imports torch; configs must not (--help)

        return LossWeights(
            adversarial=self.loss_adversarial,
            cycle=self.loss_cycle,
            identity=self.loss_identity,
            paired=self.loss_paired,
            mae=self.loss_mae,
            ssim=self.loss_ssim,
            enhancement=self.loss_enhancement,
            enhancement_z=self.enhancement_z,
        )

    @classmethod
    def presets(cls) -> Mapping[str, TrainConfig]:
        return TRAIN_PRESETS

    def differences(self, other: TrainConfig, ignore: frozenset[str] = frozenset()) -> list[str]:
        """``"name: mine vs other"`` per differing field (model fields as ``model.name``)."""
        out: list[str] = []
        for item in fields(self):
            if item.name in ignore or item.name == "preset":
                continue
            if item.name == "model":
                out += [f"model.{d}" for d in self.model.differences(other.model)]
            elif getattr(self, item.name) != getattr(other, item.name):
                out.append(
                    f"{item.name} {getattr(self, item.name)!r} vs {getattr(other, item.name)!r}"
                )
        return out


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: object, minimum: float | None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be a finite number >= {minimum}, got {value!r}")
    return number


# --- presets ---------------------------------------------------------------------------

TRAIN_PRESETS: dict[str, TrainConfig] = {
    # The paper: its networks, batch 20, 6000 iterations, Adam 2e-4.
    "paper": TrainConfig(),
    # Minutes on a 2-core CPU with phantom data: narrow, shallow networks and small batches.
    # Enough to see the losses fall and to exercise every stage; not for results.
    "small": TrainConfig(
        preset="small",
        model=MODEL_PRESETS["small"],
        batch_size=4,
        max_steps=300,
        val_every=50,
        val_patches=16,
        checkpoint_every=50,
    ),
    # Learns on a 2-core CPU within an hour (docs/training.md, "The unet preset"): one
    # normalisation-free U-Net regressing RC from LE on patches that favour enhancing regions,
    # MAE loss, no discriminators and no reverse generator (a quarter of a cycle-GAN step's
    # passes), Adam 1e-3 with clipped gradients and a weight average for inference.
    "unet": TrainConfig(
        preset="unet",
        model=MODEL_PRESETS["unet"],
        batch_size=8,
        sampling="enhancement",
        sampling_boost=8.0,
        max_steps=7000,
        lr_generator=1e-3,
        adam_beta1=0.9,
        grad_clip_norm=1.0,
        ema_decay=0.995,
        reverse_generator=False,
        loss_adversarial=0.0,
        loss_cycle=0.0,
        loss_identity=0.0,
        loss_paired=1.0,
        loss_mae=1.0,
        loss_ssim=0.0,
        val_every=250,
        val_patches=64,
        checkpoint_every=250,
        tensorboard=False,
    ),
}


def get_train_preset(name: str) -> TrainConfig:
    """The preset called ``name``; an unknown name raises ConfigError listing the valid ones."""
    return TrainConfig.get_preset(name)


def load_train_config(path: Path | None, preset: str | None = None) -> TrainConfig:
    """Read a YAML training config (or just the preset when ``path`` is None).

    A ``preset`` argument (``--preset``) wins over the file's ``preset`` key, which wins over
    the default, "paper". Raises ConfigError naming the file for an unreadable file,
    non-mapping content, a newer version, unknown keys or invalid values.
    """
    return TrainConfig.load(path, preset=preset)


def save_train_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML (atomically); :func:`load_train_config` reads it back."""
    config.save(path)
