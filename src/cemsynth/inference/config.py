"""Inference settings: the one home of every sliding-window and runtime default.

The paper (Methods, "Inference"): "a dense sliding window algorithm with an arbitrary stride of
16 pixels (~88% overlap, patch size 128 x 128 pixels) was applied on the low-energy images. For
overlapped regions, intensity averaging was applied." The defaults here are its stride 16 and
a window equal to the model's training patch size (128 for the paper's), but **gaussian**
blending: the paper's mean blending ("mean", kept for reproducing the paper) leaves square
seams on the window grid, measured with the seam index of
:mod:`cemsynth.evaluation.artifacts` (``docs/inference.md``, "Seams").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cemsynth.config_files import ConfigFile
from cemsynth.data.patches import PADDING_MODES
from cemsynth.devices import DEVICES
from cemsynth.errors import ConfigError
from cemsynth.vocabulary import PATCH_SIZE

BLEND_MODES = ("gaussian", "mean")
PAD_MODES = tuple(mode for mode in PADDING_MODES if mode != "shift")
"""The training paddings that apply to a whole image ("shift" moves a patch inside it)."""
PRECISIONS = ("fp32", "bf16")
BACKENDS = ("auto", "torch", "onnx")
OUTPUT_FORMATS = ("dicom", "png", "tiff")
DEFAULT_OUTPUT_FORMAT = "dicom"


def check_output_format(name: str | None) -> str:
    """The output format ``name`` (None: :data:`DEFAULT_OUTPUT_FORMAT`), checked.

    Raises :class:`ConfigError` (one line, listing the choices) for a name not in
    :data:`OUTPUT_FORMATS`. Needs no torch, so the command line checks before loading a model.
    """
    chosen = DEFAULT_OUTPUT_FORMAT if name is None else name
    if chosen not in OUTPUT_FORMATS:
        raise ConfigError(
            f"unknown output format {chosen!r} (--format); choose one of "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    return chosen


@dataclass(frozen=True)
class SlidingWindowConfig(ConfigFile):
    """How an image on the cached grid is tiled into windows and the outputs blended.

    Attributes:
        window: Side of the square window in pixels; None (the default): the model's
            training patch size (its checkpoint's ``train_config.patch_size``, or the
            ``window`` of an exported file), :data:`~cemsynth.vocabulary.PATCH_SIZE` (128)
            for a model that does not record it. See :meth:`window_size`.
        stride: Step between window starts in pixels (16: 87.5% overlap, the paper's).
            The last window of each row/column is aligned to the image border, as MONAI does.
        blend: "gaussian" (weights fall off from the window centre, sigma =
            ``gaussian_sigma`` x window, so window borders, where the network sees least
            context, hardly count: no seams) or "mean" (every window's output weighs 1: the
            paper's intensity averaging, which shows the window grid).
        gaussian_sigma: Sigma of the gaussian weights as a fraction of the window side.
        batch_size: Windows per network call; memory grows with it, the result does not change.
        skip_background: Do not evaluate windows that contain no breast pixel. Inside the
            breast the result is unchanged (every window covering a breast pixel contains it).
        mask_margin: Windows within this many pixels of the breast also count as touching it,
            so the pixels just outside the mask, which the inverse's bilinear resampling reads
            at the skin line, get exactly the full average too.
        pad_mode: How an image smaller than the window is padded to the window size (centred,
            as MONAI does): "reflect" (mirror, as the training patch sampler does near
            borders) or "constant" (``pad_value``; MONAI pads with 0).
        pad_value: Fill value for ``pad_mode="constant"``, in the [-1, 1] LE domain
            (-1: the bottom of the window, i.e. air).
        fill_value: Output value, in the [-1, 1] RC domain, of pixels that no evaluated window
            covers (only possible outside the breast when background windows are skipped).
    """

    KIND = "sliding-window"

    window: int | None = None
    stride: int = 16
    blend: str = "gaussian"
    gaussian_sigma: float = 0.125
    batch_size: int = 16
    skip_background: bool = True
    mask_margin: int = 2
    pad_mode: str = "reflect"
    pad_value: float = -1.0
    fill_value: float = -1.0

    def __post_init__(self) -> None:
        for name in ("window", "stride", "batch_size"):
            value = getattr(self, name)
            if name == "window" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.window is not None and self.stride > self.window:
            raise ConfigError(
                f"stride {self.stride} is larger than the window {self.window}: pixels between "
                "windows would get no value"
            )
        if isinstance(self.mask_margin, bool) or not isinstance(self.mask_margin, int):
            raise ConfigError(f"mask_margin must be an integer, got {self.mask_margin!r}")
        if self.mask_margin < 0:
            raise ConfigError(f"mask_margin must be >= 0, got {self.mask_margin}")
        if self.blend not in BLEND_MODES:
            raise ConfigError(
                f"unknown blend mode {self.blend!r}; choose one of {', '.join(BLEND_MODES)}"
            )
        if self.pad_mode not in PAD_MODES:
            raise ConfigError(
                f"unknown pad mode {self.pad_mode!r}; choose one of {', '.join(PAD_MODES)}"
            )
        if not float(self.gaussian_sigma) > 0:
            raise ConfigError(f"gaussian_sigma must be positive, got {self.gaussian_sigma!r}")
        object.__setattr__(self, "gaussian_sigma", float(self.gaussian_sigma))
        object.__setattr__(self, "pad_value", float(self.pad_value))
        object.__setattr__(self, "fill_value", float(self.fill_value))

    def window_size(self, patch_size: int | None = None) -> int:
        """The window side in pixels: ``window`` when set, else the model's training
        ``patch_size``, else :data:`~cemsynth.vocabulary.PATCH_SIZE`."""
        if self.window is not None:
            return self.window
        return patch_size if patch_size is not None else PATCH_SIZE

    def for_model(self, patch_size: int | None) -> SlidingWindowConfig:
        """These settings with the window fixed for a model trained on ``patch_size``
        patches (None: not recorded); raises ConfigError if the stride exceeds it."""
        return replace(self, window=self.window_size(patch_size))


@dataclass(frozen=True)
class RuntimeConfig(ConfigFile):
    """Where and how the network runs.

    Attributes:
        device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
        precision: "fp32", or "bf16" (autocast; fast on recent GPUs, slow on CPUs without
            bfloat16 units). Instance normalisation amplifies bfloat16 rounding in windows
            that are mostly background: check the result against fp32 for your model.
        backend: "torch"; "onnx" (ONNX Runtime, fp32: the generator is exported in memory);
            or "auto": onnx on the CPU in fp32 when onnxruntime is installed (it runs this
            network 1.3-2x faster than torch there, to float32 rounding), else torch.
        threads: CPU threads for the network (0: leave the library's default, one per core).
        workers: Batches of windows evaluated at the same time on the CPU, each on its share
            of the CPU threads (0: one per thread, at most 4; on CUDA always 1). The result
            does not change.
        channels_last: Run the torch network in channels-last memory format (the fast
            convolution layout of oneDNN and cuDNN; same result to float32 rounding).
    """

    KIND = "runtime"

    device: str = "auto"
    precision: str = "fp32"
    backend: str = "auto"
    threads: int = 0
    workers: int = 0
    channels_last: bool = True

    def __post_init__(self) -> None:
        for name, choices in (
            ("device", DEVICES),
            ("precision", PRECISIONS),
            ("backend", BACKENDS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
        for name in ("threads", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if self.backend == "onnx" and self.precision != "fp32":
            raise ConfigError("the onnx backend runs in fp32 only; use --precision fp32")


MAX_CLIPPED_FRACTION = 0.5
"""An LE image whose breast pixels fall outside the model's LE window more often than this is
refused: the model's preprocessing does not fit the image (e.g. an 8-bit model on 14-bit
DICOM). A matching image clips well under 1% (phantom: at most 0.3%)."""
