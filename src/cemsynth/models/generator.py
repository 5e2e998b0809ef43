"""The ResNet generator of the paper (Methods, "Cycle-GAN"), written for 1-channel images.

The paper's text: "a Res-Net model for the generator, with one convolutional encoding block
(2DReflectionPadding-Conv2D-InstanceNorm-Relu), two down-convolution blocks
(StridedConv2D-InstanceNorm-Relu), nine residual units, two up-convolutional blocks
(StridedTransposedConv2D-InstanceNorm-Relu), and Tanh activation function for the last layer".
Layer by layer, with ``w = gen_width`` (64 in the paper) and an ``H x W`` input:

====================  ==========================================================  ==============
block                 layers                                                      output
====================  ==========================================================  ==============
encode                ReflectionPad 3, Conv 7x7 (1 -> w), InstanceNorm, ReLU       w, H, W
down 1                Conv 3x3 stride 2 pad 1 (w -> 2w), InstanceNorm, ReLU        2w, H/2, W/2
down 2                Conv 3x3 stride 2 pad 1 (2w -> 4w), InstanceNorm, ReLU       4w, H/4, W/4
residual x N          x + [ReflectionPad 1, Conv 3x3, IN, ReLU,                    4w, H/4, W/4
                      ReflectionPad 1, Conv 3x3, IN]
up 1                  ConvTranspose 3x3 stride 2 pad 1 out-pad 1 (4w -> 2w), IN,   2w, H/2, W/2
                      ReLU
up 2                  ConvTranspose 3x3 stride 2 pad 1 out-pad 1 (2w -> w), IN,    w, H, W
                      ReLU
decode                ReflectionPad 3, Conv 7x7 (w -> 1, with bias), Tanh          1, H, W
====================  ==========================================================  ==============

**Any input size.** The two stride-2 steps need sides divisible by 4, and the reflection
padding at the bottleneck needs at least 2 pixels there, so :meth:`ResnetGenerator.forward`
pads the bottom and right of the input up to the next multiple of 4 (at least 8) and crops
the output back to the input's size. It mirrors the image (reflection, no repeated edge pixel)
when the image is large enough and repeats the edge pixel otherwise. Sides that are already
multiples of 4 (such as the 128 x 128 training patches) are not touched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cemsynth.models.config import ModelConfig

SIZE_MULTIPLE = 4
"""Two stride-2 down-convolutions: sides must be divisible by 2**2."""
MIN_SIDE = 8
"""Smallest padded side: the bottleneck (side / 4) must exceed the reflection pad of 1."""


def _norm(channels: int, affine: bool) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)


class ResidualBlock(nn.Module):
    """``x + F(x)`` with two reflection-padded 3x3 convolutions; shape-preserving.

    Input and output: float32 ``(N, channels, H, W)``, ``H, W >= 2``.
    """

    def __init__(self, channels: int, norm_affine: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            _norm(channels, norm_affine),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=False),
            _norm(channels, norm_affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image-to-image generator: LE -> RC or RC -> LE in the [-1, 1] intensity domain.

    Args:
        channels: image channels in and out (1).
        width: channels of the first block (the paper: 64).
        residual_blocks: residual blocks at the bottleneck (the paper: 9).
        norm_affine: InstanceNorm with a learned scale and shift.

    ``forward`` takes float32 ``(N, channels, H, W)`` with any ``H, W >= 1`` (values in
    [-1, 1], the cached intensity domain) and returns the same shape with values in (-1, 1)
    (tanh). See the module docstring for the padding that makes any size work.
    """

    def __init__(
        self, channels: int = 1, width: int = 64, residual_blocks: int = 9, norm_affine: bool = True
    ) -> None:
        super().__init__()
        w = width
        self.encode = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(channels, w, kernel_size=7, bias=False),
            _norm(w, norm_affine),
            nn.ReLU(inplace=True),
        )
        self.down = nn.Sequential(
            nn.Conv2d(w, 2 * w, kernel_size=3, stride=2, padding=1, bias=False),
            _norm(2 * w, norm_affine),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, kernel_size=3, stride=2, padding=1, bias=False),
            _norm(4 * w, norm_affine),
            nn.ReLU(inplace=True),
        )
        self.residual = nn.Sequential(
            *(ResidualBlock(4 * w, norm_affine) for _ in range(residual_blocks))
        )
        # output_padding 1 makes each transposed convolution exactly double the side
        self.up = nn.Sequential(
            nn.ConvTranspose2d(
                4 * w, 2 * w, kernel_size=3, stride=2, padding=1, output_padding=1, bias=False
            ),
            _norm(2 * w, norm_affine),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(
                2 * w, w, kernel_size=3, stride=2, padding=1, output_padding=1, bias=False
            ),
            _norm(w, norm_affine),
            nn.ReLU(inplace=True),
        )
        self.decode = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(w, channels, kernel_size=7, bias=True),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        padded = pad_to_multiple(x, SIZE_MULTIPLE, MIN_SIDE)
        y = self.decode(self.up(self.residual(self.down(self.encode(padded)))))
        return y[..., :rows, :cols]


def padded_side(side: int, multiple: int = SIZE_MULTIPLE, minimum: int = MIN_SIDE) -> int:
    """The side :func:`pad_to_multiple` pads to: the next multiple of ``multiple``, >= minimum."""
    target = -(-side // multiple) * multiple
    return max(target, -(-minimum // multiple) * multiple)


def pad_to_multiple(
    x: torch.Tensor, multiple: int = SIZE_MULTIPLE, minimum: int = MIN_SIDE
) -> torch.Tensor:
    """Pad the bottom and right of ``(N, C, H, W)`` so both sides fit the generator.

    Mirrors the image (``reflect``) where the pad is smaller than the side, else repeats the
    edge pixel (``replicate``). Returns ``x`` itself when no padding is needed.
    """
    rows, cols = x.shape[-2:]
    pad_rows = padded_side(rows, multiple, minimum) - rows
    pad_cols = padded_side(cols, multiple, minimum) - cols
    if pad_rows == 0 and pad_cols == 0:
        return x
    mode = "reflect" if pad_rows < rows and pad_cols < cols else "replicate"
    return F.pad(x, (0, pad_cols, 0, pad_rows), mode=mode)


def build_generator(config: ModelConfig) -> nn.Module:
    """A freshly initialised generator of ``config.generator``'s kind (uses the torch global
    RNG: seed it first)."""
    from cemsynth.models.init import init_weights

    if config.generator == "unet":
        from cemsynth.models.unet import build_unet

        return build_unet(config)
    network = ResnetGenerator(
        channels=config.channels,
        width=config.gen_width,
        residual_blocks=config.gen_residual_blocks,
        norm_affine=config.norm_affine,
    )
    init_weights(network, config.init_std)
    return network
