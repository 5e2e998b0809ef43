"""The synthetic manifest: one reader for predict, evaluate and the reader study."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.errors import InputFileError
from cemsynth.inference.outputs import (
    SYNTHETIC_MANIFEST,
    ManifestRow,
    read_synthetic_manifest,
    write_synthetic_manifest,
)


def write_table(folder: Path, text: str) -> Path:
    path = folder / SYNTHETIC_MANIFEST
    path.write_text(text, encoding="utf-8")
    return path


def test_a_folder_without_a_table_has_none(tmp_path: Path) -> None:
    assert read_synthetic_manifest(tmp_path) is None


def test_rows_are_read_with_spellings_normalized(tmp_path: Path) -> None:
    write_table(
        tmp_path,
        "patient_id,laterality,view,path\nP1,left,cc,P1_L_CC.dcm\nP1, R ,MLO,sub/P1_R_MLO.dcm\n",
    )
    rows = read_synthetic_manifest(tmp_path)
    assert rows == [
        ManifestRow("P1", "L", "CC", "P1_L_CC.dcm", ""),
        ManifestRow("P1", "R", "MLO", "sub/P1_R_MLO.dcm", ""),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("P1,L,CC,a.dcm\nP1,L,cc,b.dcm\n", "line 3: P1 L CC listed twice"),
        ("P1,X,CC,a.dcm\n", "line 2: laterality 'X' is not L or R"),
        ("P1,L,CC,\n", "line 2: path is empty"),
        ("", "no data rows"),
    ],
)
def test_a_malformed_table_is_one_line_naming_file_and_line(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write_table(tmp_path, "patient_id,laterality,view,path\n" + body)
    with pytest.raises(InputFileError) as caught:
        read_synthetic_manifest(tmp_path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_writing_keeps_earlier_rows_whose_files_exist(tmp_path: Path) -> None:
    (tmp_path / "P1_L_CC.dcm").write_bytes(b"x")
    write_synthetic_manifest(tmp_path, [ManifestRow("P1", "L", "CC", "P1_L_CC.dcm", "le1")])
    (tmp_path / "P2_R_CC.dcm").write_bytes(b"x")
    write_synthetic_manifest(tmp_path, [ManifestRow("P2", "R", "CC", "P2_R_CC.dcm", "le2")])
    gone = ManifestRow("P3", "L", "MLO", "P3_L_MLO.dcm", "le3")  # its file is not there
    write_synthetic_manifest(tmp_path, [gone])
    rows = read_synthetic_manifest(tmp_path)
    assert rows is not None
    assert [row.key for row in rows] == [("P1", "L", "CC"), ("P2", "R", "CC"), ("P3", "L", "MLO")]
    assert rows[0].source == "le1"
    (tmp_path / "P1_L_CC.dcm").unlink()
    write_synthetic_manifest(tmp_path, [gone])
    rows = read_synthetic_manifest(tmp_path)
    assert rows is not None
    assert [row.key for row in rows] == [("P2", "R", "CC"), ("P3", "L", "MLO")]
