"""The paper's cycle-GAN networks: ResNet generators, PatchGAN discriminators, presets.

Importing this package imports torch.
"""

from cemsynth.models.config import (
    MODEL_PRESETS,
    ModelConfig,
    get_model_preset,
)
from cemsynth.models.cyclegan import NETWORK_NAMES, CycleGAN, build_cyclegan, count_parameters
from cemsynth.models.discriminator import PatchDiscriminator, build_discriminator, receptive_field
from cemsynth.models.generator import ResnetGenerator, build_generator, pad_to_multiple

__all__ = [
    "MODEL_PRESETS",
    "NETWORK_NAMES",
    "CycleGAN",
    "ModelConfig",
    "PatchDiscriminator",
    "ResnetGenerator",
    "build_cyclegan",
    "build_discriminator",
    "build_generator",
    "count_parameters",
    "get_model_preset",
    "pad_to_multiple",
    "receptive_field",
]
