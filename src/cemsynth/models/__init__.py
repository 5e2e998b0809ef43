"""The paper's cycle-GAN networks: ResNet generators, PatchGAN discriminators, presets.

The names are imported on first use, so that importing a config module of this package
(for ``--help``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cemsynth.models.config import (
        MODEL_PRESETS,
        ModelConfig,
        get_model_preset,
    )
    from cemsynth.models.cyclegan import (
        NETWORK_NAMES,
        CycleGAN,
        build_cyclegan,
        count_parameters,
    )
    from cemsynth.models.discriminator import (
        PatchDiscriminator,
        build_discriminator,
        receptive_field,
    )
    from cemsynth.models.generator import (
        ResnetGenerator,
        build_generator,
        pad_to_multiple,
    )

# Each public name and the module that defines it; imported on first use (see above).
_HOMES = {
    "CycleGAN": "cemsynth.models.cyclegan",
    "MODEL_PRESETS": "cemsynth.models.config",
    "ModelConfig": "cemsynth.models.config",
    "NETWORK_NAMES": "cemsynth.models.cyclegan",
    "PatchDiscriminator": "cemsynth.models.discriminator",
    "ResnetGenerator": "cemsynth.models.generator",
    "build_cyclegan": "cemsynth.models.cyclegan",
    "build_discriminator": "cemsynth.models.discriminator",
    "build_generator": "cemsynth.models.generator",
    "count_parameters": "cemsynth.models.cyclegan",
    "get_model_preset": "cemsynth.models.config",
    "pad_to_multiple": "cemsynth.models.generator",
    "receptive_field": "cemsynth.models.discriminator",
}

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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
