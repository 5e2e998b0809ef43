"""End to end on a small phantom: report files, bad inputs per case, splits, CLI exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from cemsynth.cli import main
from cemsynth.data.splits import SplitConfig, Splits, write_splits
from cemsynth.evaluation import EvaluationConfig, run_evaluation
from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.preprocess.config import get_preset

FAST = EvaluationConfig(bootstrap_samples=50, bin_factor=2)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    write_cohort(
        out, n_patients=2, seed=3, pixel_mm=0.1, size="small", config=PhantomConfig(), workers=1
    )
    return out


def _rows(manifest: Path) -> list[dict[str, str]]:
    with open(manifest, newline="") as handle:
        return list(csv.DictReader(handle))


def _write_blurred(cohort: Path, pred: Path, skip: set[str], crop: set[str]) -> None:
    """Predictions = clinical RC blurred (sigma 2 px), at the rc_path under ``pred``."""
    for row in _rows(cohort / "manifest.csv"):
        name = f"{row['patient_id']} {row['laterality']} {row['view']}"
        if name in skip:
            continue
        ds = pydicom.dcmread(cohort / row["rc_path"])
        pixels = ndimage.gaussian_filter(ds.pixel_array.astype(np.float32), 2.0)
        if name in crop:
            pixels = pixels[:-8]
        ds.set_pixel_data(np.rint(pixels).astype(np.uint16), "MONOCHROME2", 14)
        target = pred / row["rc_path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target)


def test_report_on_blurred_predictions_with_bad_cases(cohort: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    _write_blurred(cohort, pred, skip={"P0002 R MLO"}, crop={"P0002 R CC"})
    rows = _rows(cohort / "manifest.csv")
    for row in rows:
        if (row["patient_id"], row["laterality"], row["view"]) == ("P0001", "R", "CC"):
            row["fgt_mask_path"] = "P0001/truth/missing_fgt.png"
    manifest = cohort / "manifest_bad_masks.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    result = run_evaluation(pred, manifest, out, get_preset("phantom"), FAST)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"evaluated": 6, "skipped": 2}
    reasons = {
        f"{s['patient_id']} {s['laterality']} {s['view']}": s["reason"] for s in summary["skipped"]
    }
    assert "no prediction found" in reasons["P0002 R MLO"]
    assert "size mismatch" in reasons["P0002 R CC"]
    notes = [n for n in summary["notes"] if n["case"] == "P0001 R CC"]
    assert any("fibroglandular mask unusable" in n["note"] for n in notes)
    assert summary["metrics"]["clinical_cnr"]["n"] == 5  # the case without its mask is out

    with open(out / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 6 and "synthetic_ssim_breast" in table[0]
    metrics = summary["metrics"]
    # blur keeps the structure: better than the LE baseline, worse than a perfect copy
    assert 0 < metrics["synthetic_mae_breast"]["mean"] < metrics["baseline_le_mae_breast"]["mean"]
    assert metrics["synthetic_psnr_breast"]["ci_low"] <= metrics["synthetic_psnr_breast"]["mean"]
    assert summary["paper"]["mae"]["synthetic"]["r"] > 0.9
    assert summary["verdict"]["status"] in ("counts", "does not count", "not assessable")
    assert summary["baselines"]["flat_train_value"] > 1000  # RC stored units
    assert "evaluated images" in summary["baselines"]["flat_train_source"]
    assert result.summary["detectability"]["sources"]["synthetic"]["n_present"] >= 1

    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 6
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "flat at own mean (oracle)" in page and "size mismatch" in page


def test_identity_predictions_on_the_test_split_through_the_cli(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Predictions listed in synthetic_manifest.csv that are the clinical RC files themselves."""
    pred = tmp_path / "pred"
    pred.mkdir()
    lines = ["patient_id,laterality,view,path"]
    lines += [
        f"{r['patient_id']},{r['laterality']},{r['view']},{cohort / r['rc_path']}"
        for r in _rows(cohort / "manifest.csv")
    ]
    (pred / "synthetic_manifest.csv").write_text("\n".join(lines) + "\n")
    splits = tmp_path / "splits.json"
    write_splits(
        splits,
        Splits(
            config=SplitConfig(),
            patients={"train": ["P0001"], "val": [], "test": ["P0002"]},
            entries={"train": [], "val": [], "test": []},
            strata={"P0001": "positive", "P0002": "positive"},
        ),
    )
    out = tmp_path / "report"
    args = [
        "evaluate",
        "--pred",
        str(pred),
        "--manifest",
        str(cohort / "manifest.csv"),
        "--out",
        str(out),
        "--split",
        "test",
        "--splits",
        str(splits),
        "--preset",
        "phantom",
        "--bootstrap",
        "50",
        "--bin",
        "2",
        "--no-lpips",
    ]
    main(args)
    assert "evaluated 4 images, skipped 0" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert metrics["synthetic_mae_breast"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["synthetic_ssim_breast"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["synthetic_cnr"]["mean"] == pytest.approx(metrics["clinical_cnr"]["mean"])
    assert "train-split" in summary["baselines"]["flat_train_source"]
    assert summary["lpips_status"] == "LPIPS: switched off"
    ratio = summary["detectability"]["ratio_synthetic_to_clinical"]["value"]
    assert ratio is None or ratio == pytest.approx(1.0)


def test_nothing_evaluated_exits_2_and_still_says_why(cohort: Path, tmp_path: Path) -> None:
    pred = tmp_path / "empty"
    pred.mkdir()
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "evaluate",
                "--pred",
                str(pred),
                "--manifest",
                str(cohort / "manifest.csv"),
                "--out",
                str(out),
                "--preset",
                "phantom",
                "--no-lpips",
            ]
        )
    assert stop.value.code == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == {"evaluated": 0, "skipped": 8}
    assert all("no prediction found" in s["reason"] for s in summary["skipped"])
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "evaluate",
                "--pred",
                str(tmp_path / "nope"),
                "--manifest",
                str(cohort / "manifest.csv"),
                "--out",
                str(out),
            ]
        )
    assert stop.value.code == 2


def test_bad_prediction_files_and_a_bug_skip_one_case_each(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemsynth.evaluation.run as evaluation_run

    pred = tmp_path / "pred"
    _write_blurred(cohort, pred, skip=set(), crop=set())
    rows = _rows(cohort / "manifest.csv")
    corrupt, truncated, buggy = (pred / rows[i]["rc_path"] for i in (0, 1, 2))
    corrupt.write_bytes(bytes(range(256)) * 8)
    truncated.write_bytes(truncated.read_bytes()[:-5000])
    real_case = evaluation_run.evaluate_case

    def case_with_a_bug(record, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if Path(path) == buggy:
            raise ZeroDivisionError("a bug met on this case")
        return real_case(record, path, *args, **kwargs)

    monkeypatch.setattr(evaluation_run, "evaluate_case", case_with_a_bug)
    lines: list[str] = []
    result = run_evaluation(
        pred, cohort / "manifest.csv", tmp_path / "report", get_preset("phantom"), FAST,
        progress=lines.append, write_report=False,
    )  # fmt: skip
    assert result.summary["counts"] == {"evaluated": 5, "skipped": 3}
    reasons = {s["path"]: s["reason"] for s in result.summary["skipped"]}
    assert "not a DICOM file" in reasons[str(corrupt)]
    assert "truncated DICOM file" in reasons[str(truncated)]
    assert "internal error (ZeroDivisionError" in reasons[str(buggy)]
    assert all("\n" not in reason for reason in reasons.values())
    assert sum(line.startswith("skipped ") for line in lines) == 3
    with pytest.raises(ZeroDivisionError):  # --debug: the traceback, for the bug report
        run_evaluation(
            pred, cohort / "manifest.csv", tmp_path / "report2", get_preset("phantom"), FAST,
            write_report=False, raise_unexpected=True,
        )  # fmt: skip
