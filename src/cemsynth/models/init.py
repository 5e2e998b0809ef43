"""Weight initialisation shared by the generators and discriminators."""

from __future__ import annotations

from torch import nn


def init_weights(network: nn.Module, std: float) -> None:
    """Convolution weights ~ N(0, std), biases 0; InstanceNorm scale ~ N(1, std), shift 0.

    Draws from the torch global RNG in module order, so a seeded build is reproducible.
    """
    for module in network.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.InstanceNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)
