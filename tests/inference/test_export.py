"""Export to ONNX and TorchScript, and the ONNX Runtime backend's parity with torch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from cemsynth.checkpoint import load_generator
from cemsynth.inference.backends import read_onnx_metadata
from cemsynth.inference.config import RuntimeConfig
from cemsynth.inference.export import export_model
from cemsynth.inference.predictor import Predictor
from cemsynth.io.reader import read_image

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type

pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is not installed")

ONNX_TOLERANCE = 1e-4
"""Max abs difference between ONNX Runtime and torch outputs in the [-1, 1] RC domain (float32
kernels differ in summation order; measured on random windows: 2-3e-6 for the tiny and small
generators, 1.1e-5 for the paper one)."""


@pytest.fixture(scope="module")
def onnx_file(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny generator exported to ONNX by the library call behind ``cemsynth export``."""
    out = tmp_path_factory.mktemp("export") / "generator.onnx"
    export_model(tiny_run, "onnx", out)
    return out


def test_onnx_export_command(tiny_run: Path, tmp_path: Path, run_cli: RunCli) -> None:
    out = tmp_path / "generator.onnx"
    code, stdout, err = run_cli(
        ["export", "--model", str(tiny_run), "--format", "onnx", "--out", str(out)]
    )
    assert code == 0, err
    assert f"as onnx to {out}" in stdout
    assert read_onnx_metadata(out)["identity"]["sha256"] == load_generator(tiny_run).sha256


def test_onnx_parity_with_torch(onnx_file: Path, tiny_run: Path) -> None:
    import onnxruntime as ort

    generator = load_generator(tiny_run).generator
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    batch = torch.rand(3, 1, 128, 128) * 2 - 1
    with torch.inference_mode():
        expected = generator(batch).numpy()
    (got,) = session.run(None, {"le": batch.numpy()})
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= ONNX_TOLERANCE
    # dynamic sizes: a whole (multiple-of-4) image in one call
    image = torch.rand(1, 1, 132, 200) * 2 - 1
    with torch.inference_mode():
        expected = generator(image).numpy()
    (got,) = session.run(None, {"le": image.numpy()})
    assert np.abs(got - expected).max() <= ONNX_TOLERANCE


def test_onnx_metadata_describes_the_model(onnx_file: Path, tiny_run: Path) -> None:
    metadata = read_onnx_metadata(onnx_file)
    checkpoint = load_generator(tiny_run)
    assert metadata["identity"]["sha256"] == checkpoint.sha256
    assert metadata["identity"]["step"] == checkpoint.info.step
    assert metadata["preprocess_config"] == checkpoint.preprocess_config.to_dict()
    assert metadata["train_config"] == checkpoint.info.train_config
    assert metadata["window"] == checkpoint.patch_size == 128


def test_predict_with_the_onnx_file_matches_torch(
    onnx_file: Path, tiny_run: Path, phantom_exam: Path
) -> None:
    le = read_image(phantom_exam / "P0001" / "R_CC_LE.dcm")
    from_onnx = Predictor.load(onnx_file, RuntimeConfig(device="cpu"))
    from_torch = Predictor.load(tiny_run, RuntimeConfig(device="cpu", backend="torch"))
    assert from_onnx.model.backend == "onnx" and from_torch.model.backend == "torch"
    assert from_onnx.identity == from_torch.identity
    onnx_rc = from_onnx.predict_image(le).array
    torch_rc = from_torch.predict_image(le).array
    # RC stored units: the [-1, 1] tolerance times half the RC window width (350)
    assert np.abs(onnx_rc - torch_rc).max() <= ONNX_TOLERANCE * 350


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_runs_and_carries_metadata(
    tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "generator.pt"
    code, _, err = run_cli(
        ["export", "--model", str(tiny_run), "--format", "torchscript", "--out", str(out)]
    )
    assert code == 0, err
    extra = {"cemsynth.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["cemsynth.json"])["identity"]["step"] == 4500
    generator = load_generator(tiny_run).generator
    batch = torch.rand(2, 1, 128, 128) * 2 - 1
    with torch.inference_mode():
        assert torch.allclose(scripted(batch), generator(batch), atol=1e-6)


def test_export_errors_are_one_line(tiny_run: Path, tmp_path: Path, run_cli: RunCli) -> None:
    blocked = tmp_path / "blocked.onnx"
    blocked.mkdir()
    code, _, err = run_cli(
        ["export", "--model", str(tiny_run), "--format", "onnx", "--out", str(blocked)]
    )
    assert code == 2, err
    assert err.startswith(f"cemsynth: error: {blocked}: cannot write"), err
    assert err.count("\n") == 1, err
    code, _, err = run_cli(
        ["export", "--model", str(tiny_run), "--format", "tflite", "--out", str(tmp_path / "x")]
    )
    assert code == 2, err
    assert "unknown export format 'tflite'" in err and err.count("\n") == 1, err
