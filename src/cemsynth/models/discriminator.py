"""The PatchGAN discriminator of the paper (Methods, "Cycle-GAN").

The paper's text: "three down-convolutional blocks (StridedConv2D-InstanceNorm-LeakyRelu), one
2D convolutional layer, and a sigmoid activation function for the last layer". With
``w = disc_width`` (64 by default) and ``k = disc_kernel`` (4):

=========  ===========================================================  =================
block      layers                                                       output (128 in)
=========  ===========================================================  =================
down 1     Conv k x k stride 2 pad 1 (1 -> w), InstanceNorm, LeakyReLU   w, 64, 64
down 2     Conv k x k stride 2 pad 1 (w -> 2w), InstanceNorm, LeakyReLU  2w, 32, 32
down 3     Conv k x k stride 2 pad 1 (2w -> 4w), InstanceNorm, LeakyReLU 4w, 16, 16
score      Conv k x k stride 1 pad 1 (4w -> 1, with bias), Sigmoid       1, 15, 15
=========  ===========================================================  =================

Each output value scores one overlapping patch of the input as real (1) or generated (0): with
k = 4 a score sees 46 x 46 input pixels (:func:`receptive_field`: 4 -> 10 -> 22 -> 46 walking
back through the layers). For k = 4 the output side of an input side ``s`` (a multiple of 8) is
``s / 8 - 1``; inputs need sides of at least 16.
"""

from __future__ import annotations

import torch
from torch import nn

from cemsynth.models.config import ModelConfig

DOWN_BLOCKS = 3


class PatchDiscriminator(nn.Module):
    """Scores overlapping patches of an image in [-1, 1] as real or generated.

    Args:
        channels: image channels (1).
        width: channels of the first block (doubled by each further block).
        kernel: kernel side of every convolution (4).
        sigmoid: end with a sigmoid (scores in (0, 1)); without it scores are unbounded.
        leaky_slope: LeakyReLU negative slope (0.2).
        norm_affine: InstanceNorm with a learned scale and shift.

    ``forward``: float32 ``(N, channels, H, W)``, ``H, W >= 16`` -> float32
    ``(N, 1, H', W')`` patch scores (``H' = H / 8 - 1`` for k = 4 and H a multiple of 8).
    """

    def __init__(
        self,
        channels: int = 1,
        width: int = 64,
        kernel: int = 4,
        sigmoid: bool = True,
        leaky_slope: float = 0.2,
        norm_affine: bool = True,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels, out_channels = channels, width
        for _ in range(DOWN_BLOCKS):
            layers += [
                # no bias: InstanceNorm right after removes it
                nn.Conv2d(in_channels, out_channels, kernel, stride=2, padding=1, bias=False),
                nn.InstanceNorm2d(out_channels, affine=norm_affine, track_running_stats=False),
                nn.LeakyReLU(leaky_slope, inplace=True),
            ]
            in_channels, out_channels = out_channels, 2 * out_channels
        layers.append(nn.Conv2d(in_channels, 1, kernel, stride=1, padding=1, bias=True))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def receptive_field(kernel: int = 4) -> int:
    """Side in input pixels that one output score sees (46 for kernel 4)."""
    side = kernel  # the stride-1 scoring convolution
    for _ in range(DOWN_BLOCKS):
        side = (side - 1) * 2 + kernel
    return side


def build_discriminator(config: ModelConfig) -> PatchDiscriminator:
    """A freshly initialised discriminator (uses the torch global RNG: seed it first)."""
    from cemsynth.models.init import init_weights

    network = PatchDiscriminator(
        channels=config.channels,
        width=config.disc_width,
        kernel=config.disc_kernel,
        sigmoid=config.disc_sigmoid,
        leaky_slope=config.leaky_slope,
        norm_affine=config.norm_affine,
    )
    init_weights(network, config.init_std)
    return network
