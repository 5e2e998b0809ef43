"""Matching prediction files to manifest rows (the three documented rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.errors import InputFileError
from cemsynth.evaluation.matching import PredictionFinder
from cemsynth.io.manifest import PairRecord


def _record(root: Path, patient: str = "P1", side: str = "L", view: str = "CC") -> PairRecord:
    return PairRecord(
        patient_id=patient,
        study_uid="",
        laterality=side,
        view=view,
        le_path=root / "data" / patient / f"{side}_{view}_LE.dcm",
        rc_path=root / "data" / patient / f"{side}_{view}_RC.dcm",
    )


def test_rc_path_then_file_name_then_missing(tmp_path: Path) -> None:
    manifest = tmp_path / "data" / "manifest.csv"
    pred = tmp_path / "pred"
    (pred / "P1").mkdir(parents=True)
    (pred / "P1" / "L_CC_RC.dcm").write_bytes(b"x")
    (pred / "P1_R_MLO.png").write_bytes(b"x")
    finder = PredictionFinder(pred, manifest)
    assert finder.find(_record(tmp_path)) == (pred / "P1" / "L_CC_RC.dcm", "rc_path")
    assert finder.find(_record(tmp_path, side="R", view="MLO")) == (
        pred / "P1_R_MLO.png",
        "file name",
    )
    path, why = finder.find(_record(tmp_path, patient="P2"))
    assert path is None and "no prediction found" in why


def test_synthetic_manifest_wins_and_reports_unlisted_rows(tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    pred.mkdir()
    (pred / "a.dcm").write_bytes(b"x")
    (pred / "synthetic_manifest.csv").write_text(
        "patient_id,laterality,view,path\nP1,left,cc,a.dcm\nP1,R,CC,missing.dcm\n"
    )
    finder = PredictionFinder(pred, tmp_path / "data" / "manifest.csv")
    assert finder.find(_record(tmp_path)) == (pred / "a.dcm", "synthetic_manifest.csv")
    path, why = finder.find(_record(tmp_path, side="R"))
    assert path is None and "does not exist" in why
    path, why = finder.find(_record(tmp_path, view="MLO"))
    assert path is None and "not listed" in why
    (pred / "synthetic_manifest.csv").write_text("patient_id,laterality,view,path\nP1,X,CC,a\n")
    with pytest.raises(InputFileError, match="laterality"):
        PredictionFinder(pred, tmp_path / "manifest.csv")
