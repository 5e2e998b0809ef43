"""Manifest CSV: typed records, relative paths, round trips, one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cemsynth.errors import InputFileError
from cemsynth.io.manifest import PairRecord, read_manifest, write_manifest

PHANTOM_HEADER = (
    "patient_id,study_uid,laterality,view,le_path,rc_path,breast_mask_path,fgt_mask_path,"
    "adipose_mask_path,lesion_mask_path,lesion_present,lesion_enhancing,lesion_kind,bpe_grade,"
    "halo,density,thickness_mm,pixel_mm,rows,cols,lesion_diameter_mm"
)
PHANTOM_ROWS = (
    "ph0000,1.2.3,L,CC,p0/le_L_CC.dcm,p0/rc_L_CC.dcm,p0/breast_L_CC.png,p0/fgt_L_CC.png,"
    "p0/adipose_L_CC.png,p0/lesion_L_CC.png,1,1,mass,b,0,c,52.5,0.1,712,598,8.0\n"
    "ph0000,1.2.3,R,MLO,p0/le_R_MLO.dcm,p0/rc_R_MLO.dcm,p0/breast_R_MLO.png,p0/fgt_R_MLO.png,"
    "p0/adipose_R_MLO.png,,0,0,none,a,1,c,48.0,0.1,712,598,\n"
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_phantom_manifest_is_read_with_types_and_extras(tmp_path: Path) -> None:
    path = _write(tmp_path / "cohort" / "manifest.csv", PHANTOM_HEADER + "\n" + PHANTOM_ROWS)
    first, second = read_manifest(path)
    folder = (tmp_path / "cohort").absolute()
    assert first.le_path == folder / "p0" / "le_L_CC.dcm"
    assert first.lesion_mask_path == folder / "p0" / "lesion_L_CC.png"
    assert (first.lesion_present, first.lesion_enhancing, first.halo) == (True, True, False)
    assert (first.lesion_kind, first.bpe_grade, first.density) == ("mass", "b", "c")
    assert first.extra == {
        "thickness_mm": "52.5",
        "pixel_mm": "0.1",
        "rows": "712",
        "cols": "598",
        "lesion_diameter_mm": "8.0",
    }
    assert first.key == ("ph0000", "1.2.3", "L", "CC")
    assert second.lesion_mask_path is None
    assert (second.lesion_present, second.lesion_kind, second.halo) == (False, "none", True)


def test_round_trip_keeps_every_column_and_value(tmp_path: Path) -> None:
    source = _write(tmp_path / "a" / "manifest.csv", PHANTOM_HEADER + "\n" + PHANTOM_ROWS)
    records = read_manifest(source)
    copy = tmp_path / "b" / "nested" / "copy.csv"
    write_manifest(copy, records)
    assert read_manifest(copy) == records
    with open(copy, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert set(PHANTOM_HEADER.split(",")) <= set(rows[0])
    # relative to the new manifest's folder, with forward slashes
    assert rows[0]["le_path"] == "../../a/p0/le_L_CC.dcm"
    assert (rows[0]["lesion_present"], rows[1]["halo"], rows[1]["lesion_mask_path"]) == (
        "1",
        "1",
        "",
    )


def test_records_without_truth_write_only_required_columns(tmp_path: Path) -> None:
    record = PairRecord(
        patient_id="P1",
        study_uid="",
        laterality="R",
        view="MLO",
        le_path=tmp_path / "le" / "x.png",
        rc_path=tmp_path / "re" / "x.png",
        pixel_spacing_mm=(0.085, 0.09),
    )
    path = tmp_path / "manifest.csv"
    write_manifest(path, [record])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [
        "patient_id,study_uid,laterality,view,le_path,rc_path,pixel_spacing_mm",
        "P1,,R,MLO,le/x.png,re/x.png,0.085;0.09",
    ]
    assert read_manifest(path) == [record]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_single_spacing_value_means_square_pixels(tmp_path: Path) -> None:
    text = (
        "patient_id,study_uid,laterality,view,le_path,rc_path,pixel_spacing_mm\nP,,l,cc,a,b,0.07\n"
    )
    (record,) = read_manifest(_write(tmp_path / "m.csv", text))
    assert (record.laterality, record.view, record.pixel_spacing_mm) == ("L", "CC", (0.07, 0.07))


REQUIRED = "patient_id,study_uid,laterality,view,le_path,rc_path"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient_id,laterality,view,le_path\nP,L,CC,a\n", "column(s): study_uid, rc_path"),
        (f"{REQUIRED}\nP,,L,CC,a,b\nP,,X,CC,a,b\n", "line 3: laterality must be L or R, got 'X'"),
        (f"{REQUIRED}\nP,,L,,a,b\n", "line 2: view is empty"),
        (f"{REQUIRED}\nP,,L,CC,,b\n", "line 2: le_path is empty"),
        (f"{REQUIRED},halo\nP,,L,CC,a,b,maybe\n", "line 2: halo must be 0 or 1, got 'maybe'"),
        (f"{REQUIRED},bpe_grade\nP,,L,CC,a,b,e\n", "line 2: bpe_grade must be a, b, c or d"),
        (f"{REQUIRED}\nP,,L,CC,a,b,extra\n", "line 2: more values than columns"),
        (f"{REQUIRED},pixel_spacing_mm\nP,,L,CC,a,b,-1\n", "line 2: pixel_spacing_mm must be"),
        (f"{REQUIRED},view\nP,,L,CC,a,b,CC\n", "duplicated column(s): view"),
        ("", "empty CSV file: no header row"),
    ],
)  # fmt: skip
def test_malformed_manifest_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(InputFileError) as exc:
        read_manifest(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_unreadable_manifest(tmp_path: Path) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InputFileError, match="not a UTF-8 text file"):
        read_manifest(binary)
    with pytest.raises(InputFileError, match="file not found"):
        read_manifest(tmp_path / "absent.csv")


def test_check_files_reports_the_missing_one(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    text = "patient_id,study_uid,laterality,view,le_path,rc_path\nP,,L,CC,a.png,b.png\n"
    path = _write(tmp_path / "m.csv", text)
    assert len(read_manifest(path)) == 1
    with pytest.raises(InputFileError, match=r"line 2: rc_path .*b\.png does not exist"):
        read_manifest(path, check_files=True)


def test_pair_record_validates_its_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="laterality"):
        PairRecord("P", "", "left", "CC", tmp_path / "a", tmp_path / "b")
    with pytest.raises(ValueError, match="bpe_grade"):
        PairRecord("P", "", "L", "CC", tmp_path / "a", tmp_path / "b", bpe_grade="x")


def test_ideal_rc_column_is_optional_and_round_trips(tmp_path: Path) -> None:
    """Manifests written before the phantom's ideal RC (no ``ideal_rc_path``) still load; a
    manifest with it keeps it, as a path relative to the manifest."""
    old = _write(tmp_path / "old" / "manifest.csv", PHANTOM_HEADER + "\n" + PHANTOM_ROWS)
    assert all(record.ideal_rc_path is None for record in read_manifest(old))
    header = PHANTOM_HEADER.replace("lesion_mask_path,", "lesion_mask_path,ideal_rc_path,")
    rows = PHANTOM_ROWS.replace("p0/lesion_L_CC.png,", "p0/lesion_L_CC.png,p0/ideal_L_CC.png,")
    rows = rows.replace("p0/adipose_R_MLO.png,,", "p0/adipose_R_MLO.png,,,")
    new = _write(tmp_path / "new" / "manifest.csv", header + "\n" + rows)
    first, second = read_manifest(new)
    assert first.ideal_rc_path == (tmp_path / "new" / "p0" / "ideal_L_CC.png").absolute()
    assert second.ideal_rc_path is None
    copy = tmp_path / "copy" / "manifest.csv"
    write_manifest(copy, [first, second])
    with open(copy, newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert written[0]["ideal_rc_path"].endswith("ideal_L_CC.png")
    assert not Path(written[0]["ideal_rc_path"]).is_absolute()
    assert read_manifest(copy)[0].ideal_rc_path == first.ideal_rc_path
