"""Architecture settings of the cycle-GAN: the one home of every network default.

The defaults are the paper's networks (Methods, "Cycle-GAN"): a ResNet generator with base
width 64 and nine residual blocks and a three-block PatchGAN discriminator. The authors'
earlier 3D code used a base width of 32; ``gen_width: 32`` reproduces that choice.

Choices the paper's text leaves open, and what we chose:

- **InstanceNorm with a learned scale and shift** (``norm_affine``): Keras' (contrib)
  ``InstanceNormalization``, which the authors' TensorFlow/Keras code most likely used, has
  them by default.
- **No bias in a convolution followed by InstanceNorm**: the normalisation subtracts each
  channel's mean, which cancels a bias exactly, so it would be a parameter with zero gradient.
  Layers with no normalisation after them (the generator's last convolution, the
  discriminator's last convolution) keep their bias.
- **Discriminator kernels 4 x 4, stride 2, padding 1; LeakyReLU slope 0.2** as in the
  PatchGAN of Isola et al. and the CycleGAN paper (the text names only the layer types).
- **InstanceNorm in all three discriminator blocks**, as the text says ("three
  down-convolutional blocks (StridedConv2D-InstanceNorm-LeakyRelu)"); the public CycleGAN
  code leaves it out of the first block.
- **Weights from N(0, ``init_std``)**, the usual GAN initialisation (Radford et al.); Keras'
  default would be Glorot-uniform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from cemsynth.config_files import ConfigFile
from cemsynth.errors import ConfigError

MODEL_CONFIG_VERSION = 1
"""Bump when the meaning of a field changes; reading refuses newer versions. (Fields added
with a default that keeps older files' meaning, such as ``generator``, need no bump.)"""

GENERATORS = ("resnet", "unet")


@dataclass(frozen=True)
class ModelConfig(ConfigFile):
    """Sizes of the two generators and two discriminators (both directions are alike).

    Attributes:
        channels: Image channels in and out (1: grayscale mammograms).
        generator: "resnet" (the paper's ResNet generator with InstanceNorm and transposed
            convolutions, :mod:`cemsynth.models.generator`) or "unet" (a normalisation-free
            U-Net with bilinear upsampling, :mod:`cemsynth.models.unet`).
        unet_levels: Poolings of the U-Net (its coarsest grid is ``2**unet_levels`` coarser).
        gen_width: Channels of the generator's first block; the down-convolutions double it
            twice, so the residual blocks run at ``4 * gen_width`` channels.
        gen_residual_blocks: Residual blocks at the bottleneck (the paper: 9).
        disc_width: Channels of the discriminator's first block (doubled per block).
        disc_kernel: Kernel side of every discriminator convolution.
        disc_sigmoid: End the discriminator with a sigmoid (the paper does; the least-squares
            loss then compares probabilities with 1 and 0).
        leaky_slope: Negative slope of the discriminator's LeakyReLU.
        norm_affine: InstanceNorm with a learned per-channel scale and shift.
        init_std: Standard deviation of the normal initialisation of convolution weights.
    """

    KIND = "model"
    VERSION = MODEL_CONFIG_VERSION

    channels: int = 1
    generator: str = "resnet"
    unet_levels: int = 4
    gen_width: int = 64
    gen_residual_blocks: int = 9
    disc_width: int = 64
    disc_kernel: int = 4
    disc_sigmoid: bool = True
    leaky_slope: float = 0.2
    norm_affine: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ConfigError(
                f"model.generator must be one of {', '.join(GENERATORS)}, got {self.generator!r}"
            )
        for name in ("channels", "gen_width", "disc_width", "disc_kernel", "unet_levels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name} must be a positive integer, got {value!r}")
        blocks = self.gen_residual_blocks
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ConfigError(
                f"model.gen_residual_blocks must be a non-negative integer, got {blocks!r}"
            )
        for name in ("disc_sigmoid", "norm_affine"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"model.{name} must be true or false, got {getattr(self, name)!r}"
                )
        for name in ("leaky_slope", "init_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"model.{name} must be a non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def presets(cls) -> Mapping[str, ModelConfig]:
        return MODEL_PRESETS

    def differences(self, other: ModelConfig) -> list[str]:
        """``"name: mine vs other"`` for every field that differs (for error messages)."""
        return [
            f"{f.name} {getattr(self, f.name)!r} vs {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


MODEL_PRESETS: dict[str, ModelConfig] = {
    # The paper's networks (and the defaults above).
    "paper": ModelConfig(),
    # Narrow and shallow: the same layer types at a quarter of the width and three residual
    # blocks, 1/37 of the paper's FLOPs (0.66 vs 24.4 GFLOP per 128 x 128 generator pass),
    # so a 2-core CPU trains it on phantom data in minutes. For smoke tests and the demo.
    "small": ModelConfig(gen_width=16, gen_residual_blocks=3, disc_width=16),
    # The CPU recipe's generator: a 4-level U-Net of base width 16 without normalisation or
    # transposed convolutions (no window seams, no checkerboard); 1.4 M parameters,
    # 1.9 GFLOP per 128 x 128 pass. Trained alone (no discriminators) by the "unet" preset.
    "unet": ModelConfig(generator="unet", gen_width=16, unet_levels=4, disc_width=16),
}


def get_model_preset(name: str) -> ModelConfig:
    """The architecture called ``name``; an unknown name raises ConfigError with the choices."""
    return ModelConfig.get_preset(name)
