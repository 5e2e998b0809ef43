"""A U-Net generator for CPU training: wide context, no normalisation, no transposed convolution.

Why these choices (each measured in ``docs/training.md``, "The unet preset"):

- **Context.** ``levels`` average-pool halvings (4: a 16x coarser grid at the bottom) give each
  output pixel a receptive field of about 180 pixels (72 mm at 0.4 mm), wide enough to tell a
  homogeneous mass from the textured gland around it, the cue LE offers for enhancement.
- **No normalisation.** InstanceNorm (the paper's generator) normalises each window by its own
  statistics, so the same tissue comes out differently in windows that see more air or more
  gland: seams on the window grid. Without it the network is a fixed function of its input
  neighbourhood, and overlapping windows agree.
- **No transposed convolution.** Stride-2 transposed convolutions give neighbouring output
  pixels different kernel taps: the checkerboard of period 2 and 4. Here each level upsamples
  bilinearly and then convolves (Odena et al., Distill 2016).
- **Reflection padding** in every convolution, as in the paper's generator, so window borders
  see mirrored tissue rather than a black frame.

Layer by layer, with ``w = width`` and channel widths ``w, 2w, 4w, 8w, 8w, ...`` (capped at 8w)::

    encode 0     [Conv 3x3, LeakyReLU] x 2                    w,  H,     W
    encode i     AvgPool 2, [Conv 3x3, LeakyReLU] x 2         c_i, H/2^i, W/2^i   (i = 1..L)
    decode i     Upsample x2 bilinear, Conv 3x3, LeakyReLU,   c_i, H/2^i, W/2^i   (i = L-1..0)
                 concat skip i, [Conv 3x3, LeakyReLU] x 2
    head         Conv 1x1 (w -> channels), no activation     channels, H, W

Input: float32 ``(N, channels, H, W)`` in [-1, 1] (any ``H, W >= 1``: the bottom and right are
mirrored up to a multiple of ``2**levels`` and the output cropped back). Output: the same
shape in the [-1, 1] RC domain, not bounded: the inverse window clips what lies outside.

- **No tanh at the output.** With a tanh, one large step of a normalisation-free network can
  push the output into saturation, where the gradient vanishes and it stays: in a reference
  run at learning rate 1e-3 the training MAE went from 0.23 to 1.2 within 30 steps and stayed
  there (docs/training.md). A linear head has no such trap.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cemsynth.models.config import ModelConfig
from cemsynth.models.generator import pad_to_multiple

LEAKY_SLOPE = 0.1
MAX_WIDTH_FACTOR = 8


class ConvPair(nn.Module):
    """Two reflection-padded 3x3 convolutions with LeakyReLU; ``(N, i, H, W) -> (N, o, H, W)``."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(channels_in, channels_out, 3, padding=1, padding_mode="reflect")
        self.second = nn.Conv2d(channels_out, channels_out, 3, padding=1, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.first(x), LEAKY_SLOPE)
        return F.leaky_relu(self.second(x), LEAKY_SLOPE)


class UNetGenerator(nn.Module):
    """LE -> RC (or RC -> LE) in the [-1, 1] domain; see the module docstring.

    Args:
        channels: image channels in and out (1).
        width: channels of the finest level.
        levels: number of 2x poolings (>= 1).
    """

    def __init__(self, channels: int = 1, width: int = 16, levels: int = 4) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels}")
        widths = [width * 2 ** min(i, int(math.log2(MAX_WIDTH_FACTOR))) for i in range(levels + 1)]
        self.levels = levels
        self.encode = nn.ModuleList(
            [ConvPair(channels, widths[0])]
            + [ConvPair(widths[i], widths[i + 1]) for i in range(levels)]
        )
        self.upsample = nn.ModuleList(
            nn.Conv2d(widths[i + 1], widths[i], 3, padding=1, padding_mode="reflect")
            for i in range(levels)
        )
        self.decode = nn.ModuleList(ConvPair(2 * widths[i], widths[i]) for i in range(levels))
        self.head = nn.Conv2d(widths[0], channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        multiple = 2**self.levels
        h = pad_to_multiple(x, multiple, 2 * multiple)
        skips = []
        h = self.encode[0](h)
        for level in range(1, self.levels + 1):
            skips.append(h)
            h = self.encode[level](F.avg_pool2d(h, 2))
        for level in reversed(range(self.levels)):
            h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = F.leaky_relu(self.upsample[level](h), LEAKY_SLOPE)
            h = self.decode[level](torch.cat([h, skips[level]], dim=1))
        return self.head(h)[..., :rows, :cols]


def build_unet(config: ModelConfig) -> UNetGenerator:
    """A freshly initialised U-Net (PyTorch's default Kaiming-uniform initialisation, from the
    torch global RNG: seed it first). ``init_std`` is not used: N(0, 0.02) weights would
    starve a normalisation-free network of signal."""
    return UNetGenerator(
        channels=config.channels,
        width=config.gen_width,
        levels=config.unet_levels,
    )
