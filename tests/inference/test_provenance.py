"""Settings travel with the images: predict's provenance.json, evaluate reading it, and the
sliding window taken from the checkpoint's training patch size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cemsynth.checkpoint import file_sha256
from cemsynth.cli import main
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.run import resolve_preprocess
from cemsynth.inference.config import RuntimeConfig, SlidingWindowConfig
from cemsynth.inference.outputs import SYNTHETIC_MANIFEST
from cemsynth.inference.predictor import Predictor
from cemsynth.inference.provenance import PROVENANCE_NAME, read_provenance
from cemsynth.preprocess.config import get_preset

from .conftest import CHECKPOINT_STEP, make_checkpoint

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type

TORCH_CPU = ["--backend", "torch", "--device", "cpu"]
FAST_WINDOW = ["--stride", "64"]
"""A coarse stride: four times fewer windows per axis than the default, same code path."""
FAST_EVALUATION = ["--bootstrap", "20", "--bin", "2", "--no-lpips"]
TORCH = RuntimeConfig(device="cpu", backend="torch")


def _exit_code(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def predicted(phantom_exam: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The phantom exam's four LE images through predict (PNG), into a fresh folder."""
    out = tmp_path_factory.mktemp("predicted") / "pred"
    manifest = phantom_exam / "manifest.csv"
    args = ["predict", str(manifest), "--model", str(tiny_run), "--out", str(out), "--format"]
    assert _exit_code([*args, "png", *TORCH_CPU, *FAST_WINDOW]) == 0
    return out


def test_predict_writes_provenance_with_the_run_settings(predicted: Path, tiny_run: Path) -> None:
    data = json.loads((predicted / PROVENANCE_NAME).read_text(encoding="utf-8"))
    phantom = get_preset("phantom")
    assert (data["format"], data["format_version"]) == ("cemsynth-predictions", 1)
    assert data["checkpoint"] == {
        "name": f"{tiny_run.name}/best.pt",
        "sha256": file_sha256(tiny_run / "best.pt"),
        "step": CHECKPOINT_STEP,
        "trained_with": "0.1.0",
    }
    assert data["preprocess_config"] == phantom.to_dict()
    assert data["preprocess_config_hash"] == phantom.config_hash()
    assert data["inference"] == {
        "mode": "sliding window",
        "backend": "torch",
        "device": "cpu",
        "precision": "fp32",
    }
    window = data["sliding_window"]
    assert (window["window"], window["stride"], window["blend"]) == (128, 64, "gaussian")
    from cemsynth import __version__

    assert data["cemsynth_version"] == __version__
    assert data["created_utc"].endswith("+00:00")
    # the reader gives back what was written
    provenance = read_provenance(predicted)
    assert provenance is not None and provenance.to_dict() == data


def test_predict_adds_to_its_folder_only_with_the_same_settings(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "pred"
    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    args = ["predict", str(le), "--model", str(tiny_run), "--out", str(out), "--format", "png"]
    code, _, _ = run_cli([*args, *TORCH_CPU, *FAST_WINDOW])
    assert code == 0
    first = (out / PROVENANCE_NAME).read_bytes()
    code, _, _ = run_cli([*args, *TORCH_CPU, *FAST_WINDOW])  # same settings: added, file kept
    assert code == 0
    assert (out / PROVENANCE_NAME).read_bytes() == first
    code, _, err = run_cli([*args, *TORCH_CPU, "--stride", "32", "--overwrite"])
    assert code == 2
    assert "windows;" not in err  # refused before any inference
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert f"{out / PROVENANCE_NAME}: this folder holds predictions made with other" in errors[0]
    assert "stride 32, not 64" in errors[0]
    assert (out / PROVENANCE_NAME).read_bytes() == first


def test_predict_refuses_a_folder_of_predictions_without_provenance(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "old"
    out.mkdir()
    (out / SYNTHETIC_MANIFEST).write_text("patient_id,laterality,view,path,source\n")
    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    code, _, err = run_cli(["predict", str(le), "--model", str(tiny_run), "--out", str(out)])
    assert code == 2
    assert f"{out}: holds predictions ({SYNTHETIC_MANIFEST}) without {PROVENANCE_NAME}" in err
    assert not (out / PROVENANCE_NAME).exists()


def test_evaluate_takes_the_preprocessing_from_the_provenance(
    predicted: Path, phantom_exam: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    report = tmp_path / "report"
    manifest = phantom_exam / "manifest.csv"
    code, out, _ = run_cli(
        ["evaluate", "--pred", str(predicted), "--manifest", str(manifest), "--out", str(report),
         *FAST_EVALUATION]
    )  # fmt: skip
    assert code == 0 and "evaluated 4 images" in out
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    # no --preset: the folder's phantom preprocessing, not the paper default
    assert summary["preprocess"] == get_preset("phantom").to_dict()
    assert summary["preprocess_source"] == f"{PROVENANCE_NAME} of the predictions"
    assert summary["provenance"] == json.loads((predicted / PROVENANCE_NAME).read_text())


@pytest.mark.parametrize("preset", ["paper", "8bit"])
def test_evaluate_refuses_a_preset_the_predictions_were_not_made_with(
    predicted: Path, phantom_exam: Path, tmp_path: Path, run_cli: RunCli, preset: str
) -> None:
    manifest = phantom_exam / "manifest.csv"
    code, _, err = run_cli(
        ["evaluate", "--pred", str(predicted), "--manifest", str(manifest),
         "--out", str(tmp_path / "report"), "--preset", preset, *FAST_EVALUATION]
    )  # fmt: skip
    assert code == 2
    assert err.count("\n") == 1
    given = get_preset(preset).config_hash()
    folder = get_preset("phantom").config_hash()
    assert f"made with preprocessing 'phantom' ({folder})" in err
    assert f"evaluate was given '{preset}' ({given})" in err
    assert not (tmp_path / "report").exists()


def test_a_matching_preset_and_a_folder_without_provenance_keep_working(
    predicted: Path, tmp_path: Path
) -> None:
    phantom = get_preset("phantom")
    config, source, provenance = resolve_preprocess(predicted, phantom)
    assert config == phantom and provenance is not None and source.startswith("given, same")
    bare = tmp_path / "bare"
    bare.mkdir()
    assert resolve_preprocess(bare, phantom)[:2] == (phantom, "given (--preset/--config)")
    config, source, provenance = resolve_preprocess(bare, None)
    assert (config, provenance) == (get_preset("paper"), None)
    assert "no provenance.json" in source


def test_a_damaged_provenance_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / PROVENANCE_NAME).write_text("{not json")
    with pytest.raises(CemsynthError, match=f"{PROVENANCE_NAME}: not a readable provenance"):
        read_provenance(tmp_path)


# --- the window comes from the checkpoint -------------------------------------------------------


def test_the_window_is_the_checkpoints_patch_size_unless_given(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "run64" / "best.pt", patch_size=64)
    assert Predictor.load(checkpoint, TORCH).window.window == 64
    given = SlidingWindowConfig(window=32)
    assert Predictor.load(checkpoint, TORCH, given).window.window == 32
    # today's models were trained at 128, and a checkpoint without the size gets the paper's
    paper = make_checkpoint(tmp_path / "run128" / "best.pt")
    assert Predictor.load(paper, TORCH).window.window == 128
    unknown = make_checkpoint(tmp_path / "old" / "best.pt", patch_size=None)
    assert Predictor.load(unknown, TORCH).window.window == 128


def test_predict_records_the_checkpoints_window_and_an_explicit_one_wins(
    phantom_exam: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    checkpoint = make_checkpoint(tmp_path / "run64" / "best.pt", patch_size=64)
    le = phantom_exam / "P0001" / "R_MLO_LE.dcm"
    args = ["predict", str(le), "--model", str(checkpoint), "--format", "png", *TORCH_CPU]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "a"), "--stride", "32"])
    assert code == 0 and "dense sliding window 64 px" in err
    assert _recorded_window(tmp_path / "a") == 64
    code, _, err = run_cli([*args, "--out", str(tmp_path / "b"), "--window", "96"])
    assert code == 0 and "dense sliding window 96 px" in err
    assert _recorded_window(tmp_path / "b") == 96


def _recorded_window(folder: Path) -> int:
    data = json.loads((folder / PROVENANCE_NAME).read_text(encoding="utf-8"))
    return int(data["sliding_window"]["window"])


def test_an_onnx_export_carries_the_patch_size(tmp_path: Path, run_cli: RunCli) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra (onnx, onnxruntime) is not installed")
    checkpoint = make_checkpoint(tmp_path / "run64" / "best.pt", patch_size=64)
    exported = tmp_path / "model.onnx"
    code, _, _ = run_cli(["export", "--model", str(checkpoint), "--format", "onnx",
                          "--out", str(exported)])  # fmt: skip
    assert code == 0
    assert Predictor.load(exported, RuntimeConfig(device="cpu")).window.window == 64
