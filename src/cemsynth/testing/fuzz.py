"""A seeded fuzz campaign of the command line: mutated files through index, preprocess, predict.

:func:`make_cases` writes ``n`` inputs derived from good phantom LE images, each with one
mutation drawn by a seeded generator: truncations, byte flips (header or pixels), header
tags set to hostile values (huge Rows/Columns, odd spacings and rescales, wrong modality or
transfer syntax, no pixel data, no laterality), PNG/TIFF exports flipped or cut, odd names
(not UTF-8, hidden, a PatientID of ``..``), and things that are not files (FIFOs, symlink
loops, a folder named like an image, an empty file). :func:`run_campaign` runs ``cemsynth
index`` on the folder, ``cemsynth preprocess`` on a manifest pairing every case with a good
RC image, and ``cemsynth predict`` on the folder, each in a subprocess with a time limit, and
counts what a user would see: one-line errors, tracebacks (must be 0), hangs (must be 0),
internal errors, exit codes, and the peak memory of the commands.

``make fuzz`` runs 10,000 cases in batches; the test suite runs a few hundred.
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HOSTILE_TAGS: tuple[tuple[str, Any], ...] = (
    ("Rows", 30000),
    ("Columns", 65535),
    ("PixelSpacing", [0.0, 0.0]),
    ("PixelSpacing", [40.0, 40.0]),
    ("PixelSpacing", [1e-9, 1e-9]),
    ("PixelSpacing", ["abc", "1"]),
    ("ImagerPixelSpacing", [4.0, 4.0]),
    ("RescaleIntercept", "-1000000000"),
    ("RescaleSlope", "0"),
    ("RescaleSlope", "1e30"),
    ("BitsStored", 1),
    ("BitsStored", 40),
    ("BitsAllocated", 8),
    ("PhotometricInterpretation", "RGB"),
    ("SamplesPerPixel", 3),
    ("Modality", "CT"),
    ("Modality", None),
    ("PixelData", None),
    ("ImageLaterality", None),
    ("ImageLaterality", "X"),
    ("PatientID", ".."),
    ("PatientID", "../../etc"),
    ("NumberOfFrames", 1000),
)
KINDS = (
    "truncate",
    "flip_header",
    "flip_pixels",
    "tag",
    "transfer_syntax",
    "png",
    "tiff",
    "odd_name",
    "fifo",
    "symlink_loop",
    "folder",
    "empty",
)


@dataclass(frozen=True)
class Case:
    """One fuzz input: its file and the mutation that made it."""

    path: Path
    kind: str
    detail: str


def make_cases(out: Path, seeds: Sequence[Path], n: int, seed: int) -> list[Case]:
    """Write ``n`` mutated inputs into ``out`` (a new folder) from the LE DICOMs ``seeds``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for index in range(n):
        source = Path(seeds[int(rng.integers(len(seeds)))])
        kind = KINDS[int(rng.integers(len(KINDS)))]
        cases.append(_MUTATORS[kind](out, index, source, rng))
    return cases


def _name(index: int, suffix: str = ".dcm") -> str:
    return f"case{index:05d}{suffix}"


def _truncate(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
    data = source.read_bytes()
    cut = int(rng.integers(0, len(data)))
    path = out / _name(index)
    path.write_bytes(data[:cut])
    return Case(path, "truncate", f"first {cut} of {len(data)} bytes")


def _flip(region: str) -> Callable[[Path, int, Path, np.random.Generator], Case]:
    def mutate(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
        data = bytearray(source.read_bytes())
        low, high = (132, min(2048, len(data))) if region == "header" else (2048, len(data))
        count = int(rng.integers(1, 9))
        for _ in range(count):
            data[int(rng.integers(low, high))] ^= 1 << int(rng.integers(8))
        path = out / _name(index)
        path.write_bytes(bytes(data))
        return Case(path, f"flip_{region}", f"{count} bit flips")

    return mutate


def _tag(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
    keyword, value = HOSTILE_TAGS[int(rng.integers(len(HOSTILE_TAGS)))]
    return write_hostile_tag(out, index, source, keyword, value)


def write_hostile_tag(out: Path, index: int, source: Path, keyword: str, value: object) -> Case:
    """``source`` with ``keyword`` set to ``value`` (deleted when None), as case ``index``."""
    import pydicom

    ds = pydicom.dcmread(source)
    ds.PatientID = f"F{index:05d}"
    if value is None:
        if keyword in ds:
            delattr(ds, keyword)
    else:
        try:
            setattr(ds, keyword, value)
        except (ValueError, TypeError, OverflowError):  # pydicom validates: write the bytes raw
            _set_raw(ds, keyword, value)
    path = out / _name(index)
    try:
        ds.save_as(path)
    except Exception:  # pydicom refuses some values: write the raw file with the tag dropped
        path.write_bytes(source.read_bytes())
    return Case(path, "tag", f"{keyword}={value!r}")


def _set_raw(ds: Any, keyword: str, value: object) -> None:
    """Put ``value`` into ``ds`` as the raw bytes a hostile writer would, without pydicom's
    conversion (which refuses e.g. a DS of "abc")."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    number = tag_for_keyword(keyword)
    assert number is not None, keyword
    tag = Tag(number)
    items = value if isinstance(value, list | tuple) else [value]
    raw = "\\".join(str(item) for item in items).encode("ascii")
    raw += b" " * (len(raw) % 2)  # DICOM values have even length
    ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(raw), raw, 0, False, True)


def _transfer_syntax(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
    import pydicom

    syntaxes = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5", "9.9")
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    # pydicom will not write raw pixels under a compressed syntax: swap the file meta bytes
    data = source.read_bytes()
    meta = pydicom.dcmread(source, stop_before_pixels=True).file_meta
    uid = syntaxes[int(rng.integers(len(syntaxes)))]
    meta.TransferSyntaxUID = pydicom.uid.UID(uid)
    group_length = int.from_bytes(data[140:144], "little")  # (0002,0000) UL after "DICM"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta, enforce_standard=True)
    path = out / _name(index)
    path.write_bytes(data[:132] + buffer.getvalue() + data[144 + group_length :])
    return Case(path, "transfer_syntax", f"declares {uid}, pixels raw")


def _raster(kind: str, suffix: str) -> Callable[[Path, int, Path, np.random.Generator], Case]:
    def mutate(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
        import pydicom
        from PIL import Image as PILImage

        pixels = pydicom.dcmread(source).pixel_array.astype(np.uint16)
        path = out / _name(index, suffix)
        if suffix == ".png":
            PILImage.fromarray(pixels).save(path)
        else:
            import tifffile

            tifffile.imwrite(path, pixels, compression="zlib")
        data = bytearray(path.read_bytes())
        if rng.random() < 0.5:
            data = data[: int(rng.integers(8, len(data)))]
            detail = "truncated"
        else:
            for _ in range(int(rng.integers(1, 9))):
                data[int(rng.integers(8, len(data)))] ^= 0xFF
            detail = "bytes flipped"
        path.write_bytes(bytes(data))
        return Case(path, kind, detail)

    return mutate


def _odd_name(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
    names = (
        os.fsdecode(b"case%05d_\xff\xfe.dcm" % index),
        f".case{index:05d}.dcm",
        f"case {index:05d} [L] (CC) #%.dcm",
        f"case{index:05d}_" + "x" * 200 + ".dcm",
    )
    name = names[int(rng.integers(len(names)))]
    path = out / name
    path.write_bytes(source.read_bytes())
    return Case(path, "odd_name", repr(name))


def _special(kind: str) -> Callable[[Path, int, Path, np.random.Generator], Case]:
    def mutate(out: Path, index: int, source: Path, rng: np.random.Generator) -> Case:
        path = out / _name(index)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "symlink_loop":
            path.symlink_to(path.name)
        elif kind == "folder":
            path.mkdir()
        else:
            path.write_bytes(b"")
        return Case(path, kind, kind)

    return mutate


_MUTATORS: dict[str, Callable[[Path, int, Path, np.random.Generator], Case]] = {
    "truncate": _truncate,
    "flip_header": _flip("header"),
    "flip_pixels": _flip("pixels"),
    "tag": _tag,
    "transfer_syntax": _transfer_syntax,
    "png": _raster("png", ".png"),
    "tiff": _raster("tiff", ".tif"),
    "odd_name": _odd_name,
    "fifo": _special("fifo"),
    "symlink_loop": _special("symlink_loop"),
    "folder": _special("folder"),
    "empty": _special("empty"),
}


@dataclass
class CommandResult:
    """What one command did over a batch of cases."""

    command: str
    returncode: int | None
    seconds: float
    timed_out: bool
    error_lines: int
    tracebacks: int
    internal_error_lines: tuple[str, ...] = ()
    stderr_tail: str = ""

    @property
    def internal_errors(self) -> int:
        return len(self.internal_error_lines)


@dataclass
class CampaignReport:
    """Counts over every command of a campaign (what ``make fuzz`` prints and docs record)."""

    cases: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    commands: list[CommandResult] = field(default_factory=list)
    peak_rss_mb: float = 0.0

    @property
    def tracebacks(self) -> int:
        return sum(c.tracebacks for c in self.commands)

    @property
    def hangs(self) -> int:
        return sum(1 for c in self.commands if c.timed_out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "kinds": dict(self.kinds),
            "tracebacks": self.tracebacks,
            "hangs": self.hangs,
            "internal_errors": sum(c.internal_errors for c in self.commands),
            "one_line_errors": sum(c.error_lines for c in self.commands),
            "exit_codes": Counter(str(c.returncode) for c in self.commands),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def run_command(args: Sequence[str], timeout_s: float) -> CommandResult:
    """Run ``python -m cemsynth ARGS``; a run past ``timeout_s`` is killed and counted a hang."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cemsynth", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    timed_out = False
    try:
        _, raw = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        _, raw = process.communicate()
        timed_out = True
    stderr = raw.decode("utf-8", errors="backslashreplace")
    lines = [line for line in stderr.splitlines() if line.strip()]
    return CommandResult(
        command=args[0],
        returncode=None if timed_out else process.returncode,
        seconds=time.perf_counter() - start,
        timed_out=timed_out,
        error_lines=sum(1 for line in lines if ": " in line and not line.startswith(" ")),
        tracebacks=stderr.count("Traceback (most recent call last)"),
        internal_error_lines=tuple(line for line in lines if "internal error" in line),
        stderr_tail="\n".join(lines[-5:]),
    )


def run_campaign(
    work: Path,
    seeds: Sequence[Path],
    rc_image: Path,
    model: Path,
    n: int,
    seed: int,
    timeout_s: float = 600.0,
) -> CampaignReport:
    """Make ``n`` cases under ``work`` and run index, preprocess and predict over them."""
    cases = make_cases(work / "cases", seeds, n, seed)
    report = CampaignReport(cases=len(cases), kinds=Counter(c.kind for c in cases))
    manifest = work / "fuzz_manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patient_id", "study_uid", "laterality", "view", "le_path", "rc_path"])
        for index, case in enumerate(cases):
            name = os.fsencode(case.path.name).decode("utf-8", errors="backslashreplace")
            if name != case.path.name:
                continue  # the manifest is UTF-8 text: such a name cannot be listed in it
            writer.writerow([f"F{index:05d}", "", "L", "CC", str(case.path), str(rc_image)])
    commands = (
        ["index", str(work / "cases"), "--out", str(work / "index" / "manifest.csv")],
        ["preprocess", str(manifest), "--out", str(work / "cache"), "--preset", "phantom"],
        ["predict", str(work / "cases"), "--model", str(model), "--out", str(work / "out"),
         "--backend", "torch", "--device", "cpu"],
    )  # fmt: skip
    for args in commands:
        report.commands.append(run_command(args, timeout_s))
    report.peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return report
