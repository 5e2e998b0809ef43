"""``cemsynth predict``: outputs, synthetic manifest, one-line errors, exit codes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from cemsynth.io.reader import read_image
from cemsynth.preprocess.config import get_preset

from .conftest import make_checkpoint

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "synthetic_manifest.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


TORCH_CPU = ["--backend", "torch", "--device", "cpu"]


def test_manifest_input_writes_dicom_and_synthetic_manifest(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "pred"
    manifest = phantom_exam / "manifest.csv"
    code, stdout, stderr = run_cli(
        ["predict", str(manifest), "--model", str(tiny_run), "--out", str(out), *TORCH_CPU]
    )
    assert code == 0
    assert "wrote 4 synthetic images" in stdout
    assert stderr.count("windows;") == 4  # one timing line per image
    rows = manifest_rows(out)
    assert [(r["patient_id"], r["laterality"], r["view"]) for r in rows] == [
        ("P0001", "L", "CC"),
        ("P0001", "L", "MLO"),
        ("P0001", "R", "CC"),
        ("P0001", "R", "MLO"),
    ]
    assert all((out / r["path"]).is_file() and Path(r["source"]).is_file() for r in rows)
    # the evaluation finds the outputs through the manifest
    from cemsynth.evaluation.matching import PredictionFinder
    from cemsynth.io.manifest import read_manifest

    finder = PredictionFinder(out, manifest)
    for record in read_manifest(manifest):
        found, how = finder.find(record)
        assert found is not None and how == "synthetic_manifest.csv"


@pytest.mark.parametrize(("fmt", "suffix"), [("png", ".png"), ("tiff", ".tif")])
def test_png_and_tiff_are_16_bit(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, fmt: str, suffix: str, run_cli: RunCli
) -> None:
    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    out = tmp_path / fmt
    assert run_cli(["predict", str(le), "--model", str(tiny_run), "--out", str(out),
                    "--format", fmt, *TORCH_CPU])[0] == 0  # fmt: skip
    written = out / f"P0001_L_CC{suffix}"
    image = read_image(written)
    assert image.shape == (712, 598)
    assert image.meta.bits_stored == 16
    low, high = get_preset("phantom").rc_window
    values = image.array[image.array > 0]
    assert values.min() >= low and values.max() <= high


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    good = phantom_exam / "P0001" / "L_CC_LE.dcm"
    recombined = phantom_exam / "P0001" / "L_CC_RC.dcm"
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n", encoding="utf-8")
    out = tmp_path / "pred"
    blocked = out / "P0001_R_CC.dcm"
    blocked.mkdir(parents=True)  # a folder where the output file should go
    other = phantom_exam / "P0001" / "R_CC_LE.dcm"
    code, stdout, stderr = run_cli(
        ["predict", str(recombined), str(text), str(good), str(other),
         "--model", str(tiny_run), "--out", str(out), *TORCH_CPU]
    )  # fmt: skip
    assert code == 1
    failures = [
        line
        for line in stderr.splitlines()
        if line.strip() and "windows;" not in line and not line.startswith("model ")
    ]
    assert len(failures) == 3
    assert failures[0].startswith(f"{recombined}: a recombined image")
    assert failures[1].startswith(f"{text}: not an image file")
    assert failures[2].startswith(f"{blocked}: cannot write")
    assert "2 failed" not in stdout and "1 images ok, 3 failed" in stdout
    assert (out / "P0001_L_CC.dcm").is_file()
    assert [r["view"] for r in manifest_rows(out)] == ["CC"]


def test_model_that_does_not_fit_fails_each_file(
    phantom_exam: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    run8 = make_checkpoint(tmp_path / "run8" / "best.pt", preprocess=get_preset("8bit"))
    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    code, _, stderr = run_cli(
        ["predict", str(le), "--model", str(run8), "--out", str(tmp_path / "o"), *TORCH_CPU]
    )
    assert code == 1
    err = stderr.splitlines()
    (line,) = [line for line in err if line.startswith(str(le))]
    assert "does not fit this image" in line and "[0, 255]" in line


def test_strict_stops_with_exit_2(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    recombined = phantom_exam / "P0001" / "L_CC_RC.dcm"
    code, _, err = run_cli(["predict", str(recombined), "--model", str(tiny_run), "--out",
                            str(tmp_path / "o"), "--strict", *TORCH_CPU])  # fmt: skip
    assert code == 2
    assert err.strip().endswith("predict takes low-energy images")


def test_folder_input_skips_non_le_dicom(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    folder = tmp_path / "exam"
    folder.mkdir()
    for name in ("R_MLO_LE.dcm", "R_MLO_RC.dcm"):
        (folder / name).write_bytes((phantom_exam / "P0001" / name).read_bytes())
    out = tmp_path / "o"
    code, stdout, _ = run_cli(
        ["predict", str(folder), "--model", str(tiny_run), "--out", str(out), *TORCH_CPU]
    )
    assert code == 0
    assert "1 non-LE DICOM images in folders skipped" in stdout
    assert [p.name for p in out.glob("*.dcm")] == ["P0001_R_MLO.dcm"]


def test_dicom_output_of_a_png_input_is_refused(
    tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    from PIL import Image as PILImage

    png = tmp_path / "le.png"
    PILImage.fromarray(np.full((64, 64), 2000, dtype=np.uint16)).save(png)
    code, _, err = run_cli(
        ["predict", str(png), "--model", str(tiny_run), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    assert "DICOM output needs a DICOM input" in err


def test_missing_model_is_one_line(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(
        ["predict", str(tmp_path), "--model", str(tmp_path / "nope.pt"), "--out", str(tmp_path)]
    )
    assert code == 2
    assert err.count("\n") == 1 and "checkpoint not found" in err


def test_unknown_format_is_refused_before_the_model_is_loaded(
    tmp_path: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "pred"
    # the model does not exist: the format is checked first
    code, _, err = run_cli(
        ["predict", str(tmp_path), "--model", "nope.pt", "--out", str(out), "--format", "jpg"]
    )
    assert code == 2
    assert err == (
        "cemsynth: error: unknown output format 'jpg' (--format); choose one of dicom, png, tiff\n"
    )
    assert not out.exists()


def test_run_predict_checks_the_format_itself(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path
) -> None:
    """Called directly (not through the command line), a bad format is a ConfigError, not a
    KeyError, and nothing is written."""
    from cemsynth.batch import BatchReport
    from cemsynth.errors import ConfigError
    from cemsynth.inference.config import OUTPUT_FORMATS, RuntimeConfig
    from cemsynth.inference.outputs import SUFFIXES
    from cemsynth.inference.predictor import Predictor
    from cemsynth.inference.run import run_predict

    assert set(SUFFIXES) == set(OUTPUT_FORMATS)  # every format has its file suffix
    predictor = Predictor.load(tiny_run, RuntimeConfig(device="cpu", backend="torch"))
    out = tmp_path / "pred"
    with pytest.raises(ConfigError, match=r"^unknown output format 'jpg' \(--format\)"):
        run_predict([phantom_exam / "manifest.csv"], predictor, out, "jpg", BatchReport())
    assert not out.exists()


def test_png_inputs_smaller_than_a_window_and_same_names(
    tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Two 16-bit PNGs called le.png (no patient tags): both written, under distinct names;
    at 0.4 mm their breasts are smaller than one 128 x 128 window (padded, then cropped)."""
    from PIL import Image as PILImage

    from cemsynth.preprocess.synthetic import smooth_breast_pair

    inputs = []
    for index in (1, 2):
        le, _, _ = smooth_breast_pair((400, 320), noise_std=5.0, seed=index)
        path = tmp_path / f"case{index}" / "le.png"
        path.parent.mkdir()
        PILImage.fromarray(np.rint(le.array).astype(np.uint16)).save(path)
        inputs.append(str(path))
    out = tmp_path / "o"
    code, stdout, stderr = run_cli(
        ["predict", *inputs, "--model", str(tiny_run), "--out", str(out), "--format", "png"]
    )
    assert code == 0
    assert "2 outputs without patient/laterality/view not listed" in stdout
    assert "1/1 windows" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["le.png", "le_2.png", "provenance.json"]
    assert read_image(out / "le_2.png").shape == (400, 320)


# --- never write over what predict did not write ----------------------------------------------


def _copy_le(phantom_exam: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "P0001_L_CC.dcm"
    target.write_bytes((phantom_exam / "P0001" / "L_CC_LE.dcm").read_bytes())
    return target


def test_output_folder_holding_the_input_is_refused_and_the_input_kept(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """The reported data loss: ``predict d --out d`` replaced the LE image by its synthetic."""
    le = _copy_le(phantom_exam, tmp_path / "d")
    before = le.read_bytes()
    code, _, err = run_cli(["predict", str(tmp_path / "d"), "--model", str(tiny_run), "--out",
                            str(tmp_path / "d"), *TORCH_CPU, "--overwrite"])  # fmt: skip
    assert code == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "inside the output folder" in errors[0] and str(le) in errors[0]
    assert le.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["P0001_L_CC.dcm"]


def test_png_input_in_the_output_folder_is_refused(
    tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    from PIL import Image as PILImage

    from cemsynth.preprocess.synthetic import smooth_breast_pair

    le, _, _ = smooth_breast_pair((200, 160), noise_std=5.0, seed=1)
    scan = tmp_path / "scan.png"
    PILImage.fromarray(np.rint(le.array).astype(np.uint16)).save(scan)
    before = scan.read_bytes()
    code, _, err = run_cli(["predict", str(scan), "--model", str(tiny_run), "--out",
                            str(tmp_path), "--format", "png", *TORCH_CPU])  # fmt: skip
    assert code == 2
    assert "inside the output folder" in err
    assert scan.read_bytes() == before


def test_a_file_predict_did_not_write_is_kept_unless_overwrite(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """An LE image (not predict's) where the output of that view would go: refused before any
    inference; replaced only with --overwrite; predict's own outputs are replaced on a rerun."""
    out = tmp_path / "out"
    foreign = _copy_le(phantom_exam, out)
    before = foreign.read_bytes()
    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    args = ["predict", str(le), "--model", str(tiny_run), "--out", str(out), *TORCH_CPU]
    code, _, err = run_cli(args)
    assert code == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "not written by cemsynth predict" in errors[0]
    assert "windows;" not in err  # refused before any inference
    assert foreign.read_bytes() == before
    assert run_cli([*args, "--overwrite"])[0] == 0
    assert foreign.read_bytes() != before
    code, _, err = run_cli(args)
    assert code == 0  # its own output: replaced without being told
    assert "windows;" in err


@pytest.mark.parametrize("fmt", ["dicom", "png", "tiff"])
def test_outputs_are_labelled_and_recognised(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, fmt: str, run_cli: RunCli
) -> None:
    from cemsynth.inference.outputs import SUFFIXES, made_by_predict

    le = phantom_exam / "P0001" / "L_CC_LE.dcm"
    out = tmp_path / fmt
    assert run_cli(["predict", str(le), "--model", str(tiny_run), "--out", str(out),
                    "--format", fmt, *TORCH_CPU])[0] == 0  # fmt: skip
    assert made_by_predict(out / f"P0001_L_CC{SUFFIXES[fmt]}")
    assert not made_by_predict(le)
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert not made_by_predict(tmp_path / "junk.png")
    assert not made_by_predict(tmp_path / "missing.dcm")


def test_a_fifo_in_an_input_folder_is_one_line_and_the_batch_goes_on(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    import contextlib
    import os
    import threading
    import time

    folder = tmp_path / "in"
    _copy_le(phantom_exam, folder)
    fifo = folder / "fifo.dcm"
    os.mkfifo(fifo)

    def unblock() -> None:  # if predict ever blocks opening the FIFO, fail instead of hanging
        time.sleep(30)
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock, daemon=True).start()
    start = time.monotonic()
    code, _, err = run_cli(["predict", str(folder), "--model", str(tiny_run), "--out",
                            str(tmp_path / "o"), *TORCH_CPU])  # fmt: skip
    assert time.monotonic() - start < 25.0
    assert code == 1
    assert f"{fifo}: not a regular file" in err
    assert (tmp_path / "o" / "P0001_L_CC.dcm").is_file()


def test_output_names_are_never_hidden_files() -> None:
    from cemsynth.inference.outputs import output_name

    assert output_name(("..", "L", "CC"), Path("x.dcm"), "dicom") == "L_CC.dcm"
    assert output_name(None, Path(".scan.png"), "png") == "scan.png"
    assert output_name(("P/../1", "R", "MLO"), Path("x.dcm"), "tiff") == "P_.._1_R_MLO.tif"


def test_le_headers_without_laterality_or_spacing_and_odd_rescale_do_not_stop_the_batch(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """CBIS-DDSM-like headers (series Laterality only, or none; no spacing) once crashed the
    DICOM writer; an absurd RescaleIntercept crashed the mask. Now: outputs for the first two
    (laterality derived from the series, or U; spacing from what the image was processed
    with) and one line for the third, in one batch."""
    import pydicom

    source = phantom_exam / "P0001" / "L_CC_LE.dcm"
    folder = tmp_path / "in"
    folder.mkdir()
    variants = {
        "series_laterality.dcm": {"drop": ("ImageLaterality", "ImagerPixelSpacing",
                                            "PixelSpacing"), "set": {"Laterality": "L"}},
        "no_laterality.dcm": {"drop": ("ImageLaterality", "Laterality"), "set": {}},
        "odd_rescale.dcm": {"drop": (), "set": {"RescaleIntercept": "-1000000000"}},
    }  # fmt: skip
    for name, change in variants.items():
        ds = pydicom.dcmread(source)
        for keyword in change["drop"]:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in change["set"].items():
            setattr(ds, keyword, value)
        ds.PatientID = name.split(".")[0]
        ds.save_as(folder / name)
    out = tmp_path / "out"
    code, _, err = run_cli(["predict", str(folder), "--model", str(tiny_run), "--out", str(out),
                            *TORCH_CPU])  # fmt: skip
    failures = [line for line in err.splitlines() if "odd_rescale" in line]
    assert code == 1 and len(failures) == 1 and "Traceback" not in err
    assert "cannot be told apart in float32" in failures[0]
    written = {p.name: pydicom.dcmread(p) for p in out.glob("*.dcm")}
    assert set(written) == {"series_laterality_L_CC.dcm", "no_laterality.dcm"}
    first = written["series_laterality_L_CC.dcm"]
    assert first.ImageLaterality == "L"
    assert [float(v) for v in first.ImagerPixelSpacing] == [0.1, 0.1]
    assert written["no_laterality.dcm"].ImageLaterality == "U"


def test_a_series_number_made_of_several_values_is_not_an_internal_error(
    phantom_exam: Path, tiny_run: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Found by the 10,000-case fuzz campaign: a byte flip made SeriesNumber (IS) two values
    and the DICOM writer's int() met a MultiValue. The output gets its own series number."""
    import pydicom

    from cemsynth.inference.dicom_out import SERIES_NUMBER_OFFSET
    from cemsynth.testing.fuzz import write_hostile_tag

    folder = tmp_path / "in"
    folder.mkdir()
    source = phantom_exam / "P0001" / "L_CC_LE.dcm"
    for index, value in enumerate((["1", "R"], "abc")):
        write_hostile_tag(folder, index, source, "SeriesNumber", value)
    out = tmp_path / "out"
    code, _, err = run_cli(["predict", str(folder), "--model", str(tiny_run), "--out", str(out),
                            *TORCH_CPU])  # fmt: skip
    assert code == 0 and "internal error" not in err, err
    written = [pydicom.dcmread(p) for p in sorted(out.glob("*.dcm"))]
    assert len(written) == 2
    assert all(ds.SeriesNumber == SERIES_NUMBER_OFFSET for ds in written)
