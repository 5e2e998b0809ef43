"""``cemsynth index``: exit codes and one-line messages."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from cemsynth.cli import main
from cemsynth.io.manifest import read_manifest


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4) + value).save(path)
    return path


def _run(args: list[str]) -> int:
    """The exit code of ``cemsynth ARGS`` (main returns normally on success)."""
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _pairs_folder(folder: Path) -> Path:
    _png(folder / "le" / "P1_L_CC_LE.png")
    _png(folder / "re" / "P1_L_CC_RE.png", 1)
    _png(folder / "le" / "P1_R_CC_LE.png")
    return folder


def test_index_writes_manifest_and_unpaired(tmp_path: Path, capsys) -> None:
    folder = _pairs_folder(tmp_path / "in")
    out = tmp_path / "out" / "manifest.csv"
    assert _run(["index", str(folder), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "1 pairs from 3 images" in captured.out
    assert "1 images not paired" in captured.out
    assert "P1_R_CC_LE.png: low-energy image without a recombined image" in captured.out
    (pair,) = read_manifest(out)
    assert pair.key == ("P1", "", "L", "CC")
    assert (out.parent / "unpaired.csv").read_text(encoding="utf-8").count("\n") == 2


def test_bad_files_give_one_line_each_and_exit_1(tmp_path: Path, capsys) -> None:
    folder = _pairs_folder(tmp_path / "in")
    (folder / "le" / "P2_L_CC_LE.png").write_bytes(b"not a png at all")
    (folder / "scan.dcm").write_bytes(b"\x00" * 10)
    out = tmp_path / "manifest.csv"
    assert _run(["index", str(folder), "--out", str(out)]) == 1
    err_lines = sorted(capsys.readouterr().err.splitlines())
    assert len(err_lines) == 2
    assert err_lines[0].startswith(f"{folder / 'le' / 'P2_L_CC_LE.png'}: corrupt or unreadable")
    assert err_lines[1] == f"{folder / 'scan.dcm'}: not a DICOM file (no 'DICM' marker at byte 128)"
    assert len(read_manifest(out)) == 1  # the good pair is still written


def test_strict_stops_with_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    folder = _pairs_folder(tmp_path / "in")
    (folder / "scan.dcm").write_bytes(b"\x00" * 10)
    out = tmp_path / "manifest.csv"
    assert _run(["index", str(folder), "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"cemsynth: error: {folder / 'scan.dcm'}: not a DICOM file")
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--rules", "magic"], "cemsynth: error: unknown rules 'magic'; choose one of auto,"),
        (["--vendor-keywords", "missing.yaml"], "keyword file not found"),
    ],
)
def test_argument_errors_are_one_line(tmp_path: Path, capsys, extra, expected) -> None:
    folder = _pairs_folder(tmp_path / "in")
    args = ["index", str(folder), "--out", str(tmp_path / "m.csv"), *extra]
    assert _run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_vendor_keywords_option(tmp_path: Path, make_dicom, capsys) -> None:
    pixels = np.arange(16, dtype=np.uint16).reshape(4, 4)
    for name, description in (("a.dcm", "plain L CC"), ("b.dcm", "iodine L CC")):
        make_dicom(
            tmp_path / "in" / name,
            pixels,
            SeriesDescription=description,
            ImageLaterality="L",
            ViewPosition="CC",
        )
    keywords = tmp_path / "kw.yaml"
    keywords.write_text(
        "vendors:\n  site:\n    le: {series_description: [plain]}\n"
        "    rc: {series_description: [iodine]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "m.csv"
    assert _run(["index", str(tmp_path / "in"), "--out", str(out)]) == 0
    assert read_manifest(out) == []
    assert (
        _run(["index", str(tmp_path / "in"), "--out", str(out), "--vendor-keywords", str(keywords)])
        == 0
    )
    (pair,) = read_manifest(out)
    assert (pair.le_path.name, pair.rc_path.name) == ("a.dcm", "b.dcm")


@pytest.mark.parametrize("where", ["below-a-file", "a-folder"])
def test_unwritable_out_is_one_line(tmp_path: Path, capsys, where: str) -> None:
    folder = _pairs_folder(tmp_path / "in")
    blocker = tmp_path / "taken"
    if where == "a-folder":
        blocker.mkdir()
        out, expected = blocker, f"cannot write to manifest {blocker}: it is a folder"
    else:
        blocker.write_text("x")
        out = blocker / "manifest.csv"
        expected = f"cannot write to folder of the manifest {blocker}: it is a file"
    assert _run(["index", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"cemsynth: error: {expected}")


def test_out_is_checked_before_scanning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cemsynth.index.indexer as indexer
    from cemsynth.errors import CemsynthError

    def must_not_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("the folder was scanned before --out was checked")

    monkeypatch.setattr(indexer, "find_image_files", must_not_scan)
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(CemsynthError, match="cannot write to folder of the manifest"):
        indexer.index_folder(_pairs_folder(tmp_path / "in"), out=blocker / "m.csv")


def test_failures_file_beside_the_manifest_lists_every_failure(
    tmp_path: Path, make_dicom, capsys
) -> None:
    import csv

    folder = _pairs_folder(tmp_path / "in")
    good = make_dicom(tmp_path / "good.dcm", np.arange(16, dtype=np.uint16).reshape(4, 4))
    element = b"\x28\x00\x02\x00US\x02\x00"  # SamplesPerPixel; as UL it fails on first access
    (folder / "corrupt.dcm").write_bytes(
        good.read_bytes().replace(element, b"\x28\x00\x02\x00UL\x02\x00")
    )
    (folder / "scan.dcm").write_bytes(b"\x00" * 10)
    out = tmp_path / "out" / "manifest.csv"
    assert _run(["index", str(folder), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert f"{folder / 'corrupt.dcm'}: corrupt DICOM header: " in captured.err
    with open(out.parent / "failures.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(row["path"]).name for row in rows) == ["corrupt.dcm", "scan.dcm"]
    assert f"all 2 failures are listed in {out.parent / 'failures.csv'}" in captured.out


def _unblock_later(fifo: Path, seconds: float) -> threading.Thread:
    """If the code under test ever blocks opening ``fifo``, open its other end after
    ``seconds`` so the test fails on time instead of hanging CI."""

    def open_writer() -> None:
        time.sleep(seconds)
        try:
            descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader: nothing is blocked on it
            return
        os.close(descriptor)

    thread = threading.Thread(target=open_writer, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_reported_not_opened(tmp_path: Path, capsys) -> None:
    """A FIFO named like an image once blocked ``index`` forever; it is one line now and the
    good pair beside it is indexed."""
    folder = _pairs_folder(tmp_path / "in")
    fifo = folder / "fifo.dcm"
    os.mkfifo(fifo)
    _unblock_later(fifo, 20.0)
    start = time.monotonic()
    assert _run(["index", str(folder), "--out", str(tmp_path / "manifest.csv")]) == 1
    assert time.monotonic() - start < 15.0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{fifo}: not a regular file (a FIFO, socket or device): only regular files are read"
    ]
    assert len(read_manifest(tmp_path / "manifest.csv")) == 1


def test_a_file_name_that_is_not_utf8_is_one_line_and_the_manifest_is_written(
    tmp_path: Path, capsys
) -> None:
    """Such a name once crashed ``write_manifest`` and lost the whole manifest."""
    folder = _pairs_folder(tmp_path / "in")
    odd = Path(os.fsdecode(bytes(folder / "le") + b"/P3_L_CC_LE\xff.png"))
    _png(odd)
    out = tmp_path / "manifest.csv"
    assert _run(["index", str(folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{folder / 'le'}/P3_L_CC_LE\\xff.png: file name is not valid UTF-8: rename "
                   "the file (manifests and DICOM headers store names as UTF-8)"]  # fmt: skip
    assert len(read_manifest(out)) == 1
    assert "P3_L_CC_LE\\xff.png" in (tmp_path / "failures.csv").read_text(encoding="utf-8")
