"""Baselines on the 8 real CDD-CESM pairs (../shared), in the 8-bit whole-image mode.

The documented numbers (docs/evaluation.md) come from this run; a published model's synthetic
images of the same pairs scored 22.0 dB and SSIM 0.50 there, a flat image 23.9 dB and 0.58.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cemsynth.evaluation import EvaluationConfig, run_evaluation
from cemsynth.preprocess.config import get_preset

pytestmark = pytest.mark.needs_shared


def test_flat_and_le_baselines_on_cdd_cesm(cdd_cesm_subset: Path, tmp_path: Path) -> None:
    lines = ["patient_id,study_uid,laterality,view,le_path,rc_path"]
    pred_lines = ["patient_id,laterality,view,path"]
    for le in sorted((cdd_cesm_subset / "le").glob("*_LE.png")):
        patient, side, view, _ = le.stem.split("_")
        rc = cdd_cesm_subset / "re" / le.name.replace("_LE", "_RE")
        lines.append(f"{patient},,{side},{view},{le},{rc}")
        pred_lines.append(f"{patient},{side},{view},{rc}")  # "predictions": the RC itself
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "synthetic_manifest.csv").write_text("\n".join(pred_lines) + "\n")
    out = tmp_path / "report"
    run_evaluation(
        pred,
        manifest,
        out,
        get_preset("8bit"),
        EvaluationConfig(bootstrap_samples=100, lpips=False),
    )
    summary = json.loads((out / "summary.json").read_text())
    metrics = summary["metrics"]
    assert summary["counts"]["evaluated"] == 8
    measured = {
        name: {
            key: round(metrics[f"{name}_{key}"]["mean"], 3)
            for key in (
                "psnr_8bit",
                "ssim_8bit",
                "psnr_whole",
                "ssim_whole",
                "psnr_breast",
                "ssim_breast",
            )
        }
        for name in ("baseline_le", "baseline_flat_own", "baseline_flat_train")
    }
    print(json.dumps(measured, indent=1))
    assert metrics["synthetic_mae_8bit"]["mean"] == 0.0  # the "prediction" is the RC itself
    # a flat image at the breast's own mean beats the LE image on whole-image PSNR
    assert measured["baseline_flat_own"]["psnr_whole"] > measured["baseline_le"]["psnr_whole"]
    assert 15 < measured["baseline_flat_own"]["psnr_whole"] < 30
