"""Export the LE -> RC generator to ONNX or TorchScript, with the configs it needs.

Both files carry a JSON metadata entry (key ``cemsynth``): the model's identity (checkpoint
name, SHA-256, step), its architecture, the preprocessing config and training settings it was
trained with, the sliding window to run it with (its training patch size) and the input
contract, so the file alone is enough to preprocess new images correctly.

- ONNX: opset :data:`ONNX_OPSET`, input ``le`` float32 ``(n, 1, h, w)`` in [-1, 1], output
  ``rc`` of the same shape; ``n``, ``h`` and ``w`` are dynamic, ``h`` and ``w`` must be
  multiples of 4 (the sliding window's windows are). Written with torch's TorchScript-based
  exporter (the newer exporter needs the ``onnxscript`` package).
- TorchScript: ``torch.jit.trace`` of the generator on one window (metadata in the archive's
  ``extra/cemsynth.json``); it accepts the same sizes.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from cemsynth import __version__
from cemsynth.checkpoint import LoadedGenerator, load_generator
from cemsynth.errors import ConfigError, InputFileError
from cemsynth.inference.config import SlidingWindowConfig
from cemsynth.inference.model import METADATA_KEY, ONNX_INPUT, ONNX_OUTPUT, ModelIdentity
from cemsynth.io.atomic import write_atomic

ONNX_OPSET = 17
EXPORT_FORMATS = ("onnx", "torchscript")
TORCHSCRIPT_METADATA = "cemsynth.json"
INPUT_CONTRACT = (
    "float32 (n, 1, h, w): LE windows in [-1, 1] after the preprocessing config; h and w "
    "multiples of 4. Output: synthetic RC, same shape, in [-1, 1] (RC window)."
)


def export_window(model: LoadedGenerator) -> int:
    """The sliding window an exported model runs with: its training patch size (pixels)."""
    return SlidingWindowConfig().window_size(model.patch_size)


def export_metadata(model: LoadedGenerator) -> dict[str, Any]:
    """The JSON-safe metadata stored in an exported file. ``window``: the side in pixels
    that ``predict`` uses for this file unless told otherwise."""
    return {
        "format": "cemsynth-export",
        "format_version": 1,
        "exported_with": __version__,
        "identity": ModelIdentity.of(model).to_dict(),
        "model_config": model.model_config.to_dict(),
        "preprocess_config": model.preprocess_config.to_dict(),
        "train_config": model.info.train_config,
        "window": export_window(model),
        "input": INPUT_CONTRACT,
    }


def _example(model: LoadedGenerator) -> torch.Tensor:
    size = export_window(model)
    return torch.zeros(1, model.model_config.channels, size, size)


def onnx_bytes(model: LoadedGenerator) -> bytes:
    """The generator as a serialised ONNX model (fp32, dynamic batch and size) with metadata."""
    import onnx

    buffer = io.BytesIO()
    network = model.generator.cpu().eval()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated and warns about traced size checks that
        # are constant for multiple-of-4 inputs (the contract above)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            (_example(model),),
            buffer,  # type: ignore[arg-type]  # file-like objects work; the stub says path
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={
                ONNX_INPUT: {0: "n", 2: "h", 3: "w"},
                ONNX_OUTPUT: {0: "n", 2: "h", 3: "w"},
            },
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(export_metadata(model), sort_keys=True)
    proto.producer_name = "cemsynth"
    proto.producer_version = __version__
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def torchscript_bytes(model: LoadedGenerator) -> bytes:
    """The generator traced to TorchScript, with the metadata as an extra file."""
    network = model.generator.cpu().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation and constant-size trace warnings
        traced = torch.jit.trace(network, _example(model))
        buffer = io.BytesIO()
        extra = {TORCHSCRIPT_METADATA: json.dumps(export_metadata(model), sort_keys=True)}
        torch.jit.save(traced, buffer, _extra_files=extra)
    return buffer.getvalue()


def export_model(model_path: Path | str, export_format: str, out: Path | str) -> ModelIdentity:
    """Write the generator of ``model_path`` (checkpoint or run folder) to ``out`` atomically.

    ``export_format``: "onnx" or "torchscript". Returns the identity of the model that was
    exported. Raises :class:`InputFileError` naming ``out`` if it cannot be written.
    """
    if export_format not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {export_format!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    model = load_generator(model_path)
    data = onnx_bytes(model) if export_format == "onnx" else torchscript_bytes(model)
    try:
        write_atomic(Path(out), lambda handle: handle.write(data))
    except OSError as exc:
        raise InputFileError(out, f"cannot write: {exc.strerror or exc}") from None
    return ModelIdentity.of(model)
