"""The four networks of the cycle-GAN, named by what they map.

``g_le_to_rc`` is the model the project is about (low-energy -> recombined/iodine); the other
three exist for training: ``g_rc_to_le`` closes the cycle, ``d_rc`` and ``d_le`` judge whether an
RC / LE image is real.
"""

from __future__ import annotations

import torch
from torch import nn

from cemsynth.models.config import ModelConfig
from cemsynth.models.discriminator import PatchDiscriminator, build_discriminator
from cemsynth.models.generator import build_generator

NETWORK_NAMES = ("g_le_to_rc", "g_rc_to_le", "d_le", "d_rc")


class CycleGAN(nn.Module):
    """Two generators and two discriminators (a container; the training step lives elsewhere).

    Attributes:
        g_le_to_rc: LE -> synthetic RC, ``(N, 1, H, W)`` -> ``(N, 1, H, W)`` in [-1, 1].
        g_rc_to_le: RC -> synthetic LE, same shapes.
        d_le: scores LE images (real 1, generated 0), ``(N, 1, H, W)`` -> ``(N, 1, H', W')``.
        d_rc: scores RC images, same shapes.
    """

    def __init__(
        self,
        g_le_to_rc: nn.Module,
        g_rc_to_le: nn.Module,
        d_le: PatchDiscriminator,
        d_rc: PatchDiscriminator,
    ) -> None:
        super().__init__()
        self.g_le_to_rc = g_le_to_rc
        self.g_rc_to_le = g_rc_to_le
        self.d_le = d_le
        self.d_rc = d_rc

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.g_le_to_rc.parameters(), *self.g_rc_to_le.parameters()]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [*self.d_le.parameters(), *self.d_rc.parameters()]

    def forward(self, le: torch.Tensor) -> torch.Tensor:
        """Synthetic RC for an LE batch (the inference path)."""
        return self.g_le_to_rc(le)


def build_cyclegan(config: ModelConfig) -> CycleGAN:
    """The four networks, initialised in a fixed order from the torch global RNG."""
    return CycleGAN(
        g_le_to_rc=build_generator(config),
        g_rc_to_le=build_generator(config),
        d_le=build_discriminator(config),
        d_rc=build_discriminator(config),
    )


def count_parameters(module: nn.Module) -> int:
    """Number of trainable scalars in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
