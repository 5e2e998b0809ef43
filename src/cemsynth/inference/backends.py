"""Load a trained LE -> RC generator once, for the torch or the ONNX Runtime backend.

A model is a training checkpoint (``best.pt``/``last.pt``), a ``cemsynth train --out`` folder
(its ``best.pt``, else ``last.pt``), or an ONNX file written by ``cemsynth export`` (which
carries the same configs and identity in its metadata). Whatever the source, the result is a
:class:`LoadedModel`: a callable over batches of windows plus the preprocessing config the
model was trained with, its training patch size (the sliding window's default) and the model's
identity for the DICOM output's labels. Checkpoints are read by
:func:`cemsynth.checkpoint.load_generator`, the reader training uses too.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cemsynth.checkpoint import load_generator
from cemsynth.devices import resolve_device
from cemsynth.errors import ConfigError, InputFileError
from cemsynth.inference.config import RuntimeConfig
from cemsynth.inference.model import METADATA_KEY, ONNX_INPUT, ONNX_OUTPUT, ModelIdentity
from cemsynth.inference.sliding_window import WindowModel
from cemsynth.models.config import ModelConfig
from cemsynth.preprocess.config import PreprocessConfig

ONNX_SUFFIX = ".onnx"
MAX_AUTO_WORKERS = 4
"""Concurrent window batches chosen by ``workers=0`` (each holds a batch's activations)."""


@dataclass(frozen=True)
class LoadedModel:
    """A generator ready to run, with the configs it needs.

    Attributes:
        network: float32 ``(n, 1, h, w)`` LE windows in [-1, 1] -> RC in [-1, 1], same
            shape, on ``device`` (the torch backend applies precision and memory format).
        preprocess_config: the preprocessing the model was trained with.
        model_config: the architecture (None for an ONNX file without it).
        identity: which checkpoint this is.
        backend, device, precision: how it runs.
        workers: batches of windows to evaluate at the same time (see
            :func:`~cemsynth.inference.sliding_window.sliding_window_inference`).
        patch_size: side in pixels of the patches the model was trained on (the sliding
            window's default); None when the model does not record it.
    """

    network: WindowModel
    preprocess_config: PreprocessConfig
    model_config: ModelConfig | None
    identity: ModelIdentity
    backend: str
    device: torch.device
    precision: str
    workers: int = 1
    patch_size: int | None = None


def onnxruntime_available() -> bool:
    """Whether the ``onnx`` extra (onnx and onnxruntime) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def resolve_backend(backend: str, device: torch.device, precision: str) -> str:
    """``"auto"``: onnx on the CPU in fp32 when onnxruntime is installed, else torch."""
    if backend != "auto":
        return backend
    if device.type == "cpu" and precision == "fp32" and onnxruntime_available():
        return "onnx"
    return "torch"


def resolve_workers(workers: int, device: torch.device) -> int:
    """``0``: one worker per torch CPU thread, at most :data:`MAX_AUTO_WORKERS`; one on a GPU."""
    if device.type != "cpu":
        return 1
    if workers > 0:
        return workers
    return min(max(torch.get_num_threads(), 1), MAX_AUTO_WORKERS)


# --- torch ---------------------------------------------------------------------------------


class TorchWindowModel:
    """Runs a torch generator on a device in fp32 or bf16 autocast (a :data:`WindowModel`).

    ``channels_last``: the network's weights and each batch are put in channels-last memory
    format, where oneDNN's (CPU) and cuDNN's (GPU, bf16) convolutions are fastest; the output
    is the same to float32 rounding.
    """

    def __init__(
        self, network: nn.Module, device: torch.device, precision: str, channels_last: bool
    ) -> None:
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        network = network.to(device).eval()
        if channels_last:
            network = network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        self.network = network

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            output: torch.Tensor = self.network(batch)
        return output.float().contiguous()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


# --- ONNX Runtime --------------------------------------------------------------------------


class OnnxWindowModel:
    """Runs an exported generator with ONNX Runtime (a :data:`WindowModel`, fp32).

    The exported graph takes ``(n, 1, h, w)`` with ``h`` and ``w`` multiples of 4 (the
    generator's two stride-2 steps); other sizes are edge-padded here and cropped back, as the
    torch generator does itself. Inputs and outputs are torch tensors on ``device``.
    """

    def __init__(self, model_bytes: bytes, device: torch.device, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: calls are seconds apart, and spinning
        # threads slow down everything else on the CPU (torch's own threads included)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(
                    "the onnx backend on cuda needs onnxruntime-gpu (CUDAExecutionProvider); "
                    "use --device cpu or --backend torch"
                )
            providers.insert(0, "CUDAExecutionProvider")
        self.device = device
        self.session = ort.InferenceSession(model_bytes, options, providers=providers)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        from cemsynth.models.generator import pad_to_multiple

        rows, cols = batch.shape[-2:]
        padded = pad_to_multiple(batch.detach().float())
        array = np.ascontiguousarray(padded.cpu().numpy())
        (output,) = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: array})
        result = torch.from_numpy(np.asarray(output, dtype=np.float32))[..., :rows, :cols]
        return result.to(batch.device)


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """The cemsynth metadata of an exported ONNX file (raises InputFileError if absent)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise InputFileError(path, f"not a readable ONNX file ({type(exc).__name__})") from None
    entries = {entry.key: entry.value for entry in proto.metadata_props}
    if METADATA_KEY not in entries:
        raise InputFileError(
            path, "ONNX file without cemsynth metadata; export it with cemsynth export"
        )
    try:
        data: dict[str, Any] = json.loads(entries[METADATA_KEY])
    except json.JSONDecodeError:
        raise InputFileError(path, "damaged cemsynth metadata in the ONNX file") from None
    return data


# --- loading -------------------------------------------------------------------------------


def load_model(path_or_run_dir: Path | str, runtime: RuntimeConfig) -> LoadedModel:
    """Load a checkpoint, run folder or exported ONNX file for ``runtime``'s backend and device.

    A checkpoint with the onnx backend (asked for, or chosen by "auto") is exported to ONNX in
    memory first. An ONNX file runs with the onnx backend. ``runtime.threads > 0`` sets
    torch's CPU thread count for the process. Raises :class:`InputFileError` or
    :class:`ConfigError` (one line).
    """
    path = Path(path_or_run_dir)
    device = resolve_device(runtime.device)
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    if path.suffix.lower() == ONNX_SUFFIX:
        if runtime.backend == "torch":
            raise ConfigError(f"{path} is an ONNX file; run it with --backend onnx")
        if runtime.precision != "fp32":
            raise ConfigError("the onnx backend runs in fp32 only; use --precision fp32")
        return _load_onnx_file(path, device, runtime)
    backend = resolve_backend(runtime.backend, device, runtime.precision)
    workers = resolve_workers(runtime.workers, device)
    checkpoint = load_generator(path)
    if backend == "onnx":
        from cemsynth.inference.export import onnx_bytes

        model_bytes = onnx_bytes(checkpoint)
        network: WindowModel = OnnxWindowModel(model_bytes, device, _ort_threads(runtime, workers))
    else:
        network = TorchWindowModel(
            checkpoint.generator, device, runtime.precision, runtime.channels_last
        )
    return LoadedModel(
        network=network,
        preprocess_config=checkpoint.preprocess_config,
        model_config=checkpoint.model_config,
        identity=ModelIdentity.of(checkpoint),
        backend=backend,
        device=device,
        precision=runtime.precision,
        workers=workers,
        patch_size=checkpoint.patch_size,
    )


def _ort_threads(runtime: RuntimeConfig, workers: int) -> int:
    """ONNX Runtime threads per call: a worker's share of the CPU threads when several calls
    run at once (0: ONNX Runtime's default)."""
    if workers <= 1:
        return runtime.threads
    return max(torch.get_num_threads() // workers, 1)


def _load_onnx_file(path: Path, device: torch.device, runtime: RuntimeConfig) -> LoadedModel:
    metadata = read_onnx_metadata(path)
    try:
        preprocess = PreprocessConfig.from_dict(metadata["preprocess_config"])
        model_data = metadata.get("model_config")
        model_config = None if model_data is None else ModelConfig.from_dict(model_data)
        identity = ModelIdentity.from_dict(metadata["identity"])
        patch_size = _onnx_patch_size(metadata)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise InputFileError(path, f"cemsynth metadata cannot be used ({exc})") from None
    workers = resolve_workers(runtime.workers, device)
    return LoadedModel(
        network=OnnxWindowModel(path.read_bytes(), device, _ort_threads(runtime, workers)),
        preprocess_config=preprocess,
        model_config=model_config,
        identity=identity,
        backend="onnx",
        device=device,
        precision="fp32",
        workers=workers,
        patch_size=patch_size,
    )


def _onnx_patch_size(metadata: dict[str, Any]) -> int | None:
    """The training patch size an exported file records: its ``train_config.patch_size``,
    else its ``window`` (files exported before the training settings were included: the
    window they were exported for), else None. ValueError for a value that is not a size."""
    train = metadata.get("train_config")
    if isinstance(train, dict) and "patch_size" in train:
        value = train["patch_size"]
    else:
        value = metadata.get("window")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"patch size {value!r} is not a positive integer")
    return value
