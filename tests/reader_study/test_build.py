"""``reader-study build``: blinding constraints, de-identification, the sealed key, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import stat
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.reader_study.deid import read_png16, viewer_pixels
from cemsynth.reader_study.design import design_study
from cemsynth.reader_study.study import key_dir, load_key, load_plan

from .conftest import (
    SECRETS,
    START,
    BuiltStudy,
    Cohort,
    StudyBuilder,
    make_cohort,
    write_source_dicom,
)


def _key_rows(root: Path) -> list[dict[str, str]]:
    with (key_dir(root) / "key.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_sessions_obey_the_blinding_rules(built_study: BuiltStudy) -> None:
    result, cohort = built_study.result, built_study.cohort
    plan = load_plan(result.root)
    key = load_key(result.root)
    breasts = {(p, lat) for p, lat, _, _ in cohort.breasts}
    assert result.n_breasts == len(breasts) and result.n_cases == 2 * len(breasts)
    for reader in ("R1", "R2", "R3"):
        first, second = plan.sessions[reader]
        for session in (first, second):
            types_by_patient: dict[str, set[str]] = {}
            for code in session.cases:
                types_by_patient.setdefault(key[code].patient_id, set()).add(key[code].image_type)
            # no session holds both image types of one patient
            assert all(len(types) == 1 for types in types_by_patient.values())
            # each session mixes patients read clinical and synthetic
            assert {key[c].image_type for c in session.cases} == {"clinical", "synthetic"}
        seen = Counter(
            (key[c].patient_id, key[c].laterality, key[c].image_type)
            for c in first.cases + second.cases
        )
        # every breast exactly once per image type per reader
        assert seen == Counter(
            {(p, lat, t): 1 for p, lat in breasts for t in ("clinical", "synthetic")}
        )
        assert first.opens_at == START
        assert second.opens_at == START + timedelta(days=14)
    orders = {plan.sessions[r][0].cases for r in ("R1", "R2", "R3")}
    assert len(orders) == 3  # an own random order per reader


def test_design_balances_and_counterbalances() -> None:
    breasts = [(f"P{i:02d}", side) for i in range(40) for side in ("L", "R")]
    readers = [f"R{i}" for i in range(1, 9)]
    design = design_study(breasts, readers, seed=3)
    clinical_first = Counter(p for plan in design.plans for p in plan.clinical_first)
    for plan in design.plans:
        assert len(plan.clinical_first) == 20  # half the patients clinical in session 1
        assert len(plan.sessions[0]) == len(plan.sessions[1]) == 80
    # each patient is clinical-first for some readers, not all (counterbalanced)
    assert max(clinical_first.values()) < len(readers)
    codes = [c.code for c in design.cases] + [
        i for c in design.cases for i in c.image_codes.values()
    ]
    assert len(set(codes)) == len(codes)


def test_design_is_deterministic_per_seed() -> None:
    breasts = [(f"P{i}", "L") for i in range(10)]
    assert design_study(breasts, ["A", "B"], 5) == design_study(breasts, ["A", "B"], 5)
    assert design_study(breasts, ["A", "B"], 5) != design_study(breasts, ["A", "B"], 6)


def test_build_is_reproducible(build: StudyBuilder, tmp_path: Path) -> None:
    one = build(out=tmp_path / "one")
    two = build(out=tmp_path / "two")
    other = build(out=tmp_path / "other", seed=8)
    for name in ("study.json", "key/key.csv", "key/truth.csv"):
        assert (one.root / name).read_bytes() == (two.root / name).read_bytes()
    assert sorted(p.name for p in (one.root / "images").iterdir()) == sorted(
        p.name for p in (two.root / "images").iterdir()
    )
    for image in (one.root / "images").iterdir():
        assert image.read_bytes() == (two.root / "images" / image.name).read_bytes()
    assert (one.root / "study.json").read_bytes() != (other.root / "study.json").read_bytes()
    # credentials are never derived from the seed
    assert (one.root / "key/credentials.csv").read_text() != (
        two.root / "key/credentials.csv"
    ).read_text()


def test_copies_are_deidentified_and_indistinguishable(built_study: BuiltStudy) -> None:
    result, cohort = built_study.result, built_study.cohort
    rows = _key_rows(result.root)
    original_uids = set(cohort.originals.values()) | {r["original_study_uid"] for r in rows}
    attribute_sets = {}
    for row in rows:
        path = result.root / "images" / f"{row['image_code']}.dcm"
        raw = path.read_bytes()
        for secret in (*SECRETS, row["patient_id"], "clinical", "synthetic", "cemsynth by"):
            assert secret.encode() not in raw, (secret, path)
        ds = pydicom.dcmread(path)
        assert ds.PatientID == row["case_code"] and ds.PatientName == f"CASE^{row['case_code']}"
        assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.StudyDate == "" and ds.PatientBirthDate == ""
        assert "InstitutionName" not in ds and "SeriesDescription" not in ds
        assert not any(element.tag.is_private for element in ds)
        assert {ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID}.isdisjoint(
            original_uids
        )
        assert ds.ImageLaterality == row["laterality"] and ds.ViewPosition == row["view"]
        source = pydicom.dcmread(row["source_path"])
        np.testing.assert_array_equal(ds.pixel_array, source.pixel_array)
        png = read_png16(path.with_suffix(".png"))
        np.testing.assert_array_equal(png, viewer_pixels(source.pixel_array))
        assert png.min() == 0 and png.max() == 65535  # same range whatever the source
        attribute_sets[row["image_type"]] = sorted(e.keyword for e in ds)
    assert attribute_sets["clinical"] == attribute_sets["synthetic"]


def test_key_is_sealed_and_plan_holds_no_truth(built_study: BuiltStudy) -> None:
    result, cohort = built_study.result, built_study.cohort
    assert stat.S_IMODE(key_dir(result.root).stat().st_mode) == 0o700
    for path in key_dir(result.root).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    plan_text = (result.root / "study.json").read_text()
    for word in ("clinical", "synthetic", "lesion", "bpe", *{p for p, *_ in cohort.breasts}):
        assert word not in plan_text
    with (key_dir(result.root) / "truth.csv").open(newline="") as handle:
        truth = {
            (r["patient_id"], r["laterality"]): (r["bpe"], int(r["lesion"]))
            for r in csv.DictReader(handle)
        }
    assert truth == {(p, lat): (bpe, lesion) for p, lat, lesion, bpe in cohort.breasts}
    credentials = (key_dir(result.root) / "credentials.csv").read_text()
    auth = json.loads((key_dir(result.root) / "auth.json").read_text())
    assert set(auth["users"]) == {"R1", "R2", "R3", "admin"}
    for line in credentials.splitlines()[1:]:
        assert line.split(",")[2] not in json.dumps(auth)  # only hashes are stored


def test_synthetic_manifest_matching(cohort: Cohort, build: StudyBuilder, tmp_path: Path) -> None:
    moved = tmp_path / "flat"
    moved.mkdir()
    lines = ["patient_id,laterality,view,path"]
    for i, row in enumerate(cohort.rows()):
        target = moved / f"img{i}.dcm"
        (cohort.synthetic / row["rc_path"]).rename(target)
        lines.append(f"{row['patient_id']},{row['laterality']},{row['view']},{target.name}")
    (moved / "synthetic_manifest.csv").write_text("\n".join(lines) + "\n")
    result = build(synthetic_dir=moved)
    sources = {r["source_path"] for r in _key_rows(result.root) if r["image_type"] == "synthetic"}
    assert sources == {str(p) for p in moved.glob("img*.dcm")}


# --- bad input: one clear error, nothing written ---------------------------------------------


def _edit(cohort: Cohort, column: str, value: str, index: int = 0) -> None:
    rows = cohort.rows()
    rows[index][column] = value
    cohort.write_rows(rows)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("bpe_grade", "e", "bpe_grade must be a, b, c or d, got 'e'"),
        ("laterality", "X", "laterality must be L or R"),
        ("view", "ML", "view 'ML' is not CC or MLO"),
        ("lesion_present", "maybe", "lesion_present must be 0 or 1"),
        ("rc_path", "nowhere.dcm", "clinical image not found"),
        ("patient_id", "", "patient_id is empty"),
        ("lesion_present", "", "lesion_present and bpe_grade must be filled in"),
    ],
)
def test_bad_manifest_values(
    cohort: Cohort, build: StudyBuilder, tmp_path: Path, column: str, value: str, message: str
) -> None:
    _edit(cohort, column, value)
    with pytest.raises(InputFileError, match=message):
        build()
    assert not (tmp_path / "study").exists()
    assert not list(tmp_path.glob(".study.*"))  # no half-built folder left behind


def test_structural_manifest_errors(cohort: Cohort, build: StudyBuilder) -> None:
    rows = cohort.rows()
    cohort.write_rows([*rows, rows[0]])
    with pytest.raises(InputFileError, match="P000 L CC is listed twice"):
        build()
    cohort.write_rows([r for r in rows if not (r["patient_id"] == "P000" and r["view"] == "MLO")])
    with pytest.raises(InputFileError, match="P000 L has no MLO view"):
        build()
    rows[1]["bpe_grade"] = "d" if rows[0]["bpe_grade"] != "d" else "a"
    cohort.write_rows(rows)
    with pytest.raises(InputFileError, match="views disagree on bpe_grade"):
        build()
    cohort.manifest.write_text("patient_id,view\nP1,CC\n")
    with pytest.raises(InputFileError, match="missing required column"):
        build()
    without_bpe = [{k: v for k, v in r.items() if k != "bpe_grade"} for r in rows]
    cohort.write_rows(without_bpe)
    with pytest.raises(InputFileError, match=r"missing column\(s\) bpe_grade"):
        build()
    cohort.manifest.write_text("")
    with pytest.raises(InputFileError, match="empty CSV file"):
        build()
    cohort.manifest.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputFileError, match="not a UTF-8 text file"):
        build()


def test_bad_images(cohort: Cohort, build: StudyBuilder, tmp_path: Path) -> None:
    row = cohort.rows()[0]
    target = cohort.synthetic / row["rc_path"]
    target.unlink()
    with pytest.raises(InputFileError, match="synthetic image not found"):
        build()
    target.write_text("not a dicom")
    with pytest.raises(InputFileError, match="not a readable DICOM"):
        build()
    common = {
        "patient_id": row["patient_id"],
        "laterality": row["laterality"],
        "view": row["view"],
        "study_uid": row["study_uid"],
        "description": "x",
    }
    write_source_dicom(target, np.zeros((10, 10), np.uint16), **common)
    with pytest.raises(InputFileError, match="blinding needs equal sizes"):
        build()
    write_source_dicom(target, np.zeros((64, 48), np.uint16), burned_in="YES", **common)
    with pytest.raises(InputFileError, match="BurnedInAnnotation is YES"):
        build()
    write_source_dicom(
        target,
        np.zeros((64, 48), np.uint16),
        **{**common, "laterality": "R" if row["laterality"] == "L" else "L"},
    )
    with pytest.raises(InputFileError, match="laterality tag"):
        build()
    assert not (tmp_path / "study").exists() and not list(tmp_path.glob(".study.*"))


@pytest.mark.parametrize(
    ("readers", "message"),
    [
        (["R1", "R1"], "listed twice"),
        (["admin"], "reserved for the admin"),
        (["R 1"], "is invalid"),
        ([""], "--readers is empty"),
    ],
)
def test_bad_readers(build: StudyBuilder, readers: list[str], message: str) -> None:
    with pytest.raises(CemsynthError, match=message):
        build(readers=readers)


def test_refuses_existing_study_and_bad_options(build: StudyBuilder, tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "precious.txt").write_text("keep")
    with pytest.raises(CemsynthError, match="not empty"):
        build()
    assert (tmp_path / "study" / "precious.txt").read_text() == "keep"
    with pytest.raises(CemsynthError, match="washout"):
        build(out=tmp_path / "new", washout_days=-1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build(out=empty).root == empty  # an empty folder is fine


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    from cemsynth.reader_study.deid import read_source

    pixels = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    path = tmp_path / "m1.dcm"
    write_source_dicom(
        path, pixels, patient_id="P", laterality="L", view="CC", study_uid="1.2", description="x"
    )
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsStored = 12
    ds.save_as(path)
    np.testing.assert_array_equal(read_source(path, "L", "CC").pixels, 4095 - pixels)


def test_one_patient_cohort(tmp_path: Path) -> None:
    from cemsynth.reader_study.build import build_study

    small = make_cohort(tmp_path / "in", n_patients=1)
    result = build_study(
        small.manifest,
        small.manifest.parent,
        small.synthetic,
        ["R1"],
        tmp_path / "s",
        seed=1,
        washout_days=0,
        start=START,
    )
    plan = load_plan(result.root)
    assert [len(s.cases) for s in plan.sessions["R1"]] == [2, 2]


def test_clinical_folder_elsewhere(cohort: Cohort, build: StudyBuilder, tmp_path: Path) -> None:
    elsewhere = tmp_path / "pacs-export"
    shutil.copytree(cohort.manifest.parent, elsewhere)
    for dicom in cohort.manifest.parent.glob("*/*.dcm"):
        dicom.unlink()
    result = build(clinical_dir=elsewhere)
    sources = {r["source_path"] for r in _key_rows(result.root) if r["image_type"] == "clinical"}
    assert all(path.startswith(str(elsewhere)) for path in sources) and len(sources) == 18
