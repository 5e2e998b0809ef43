"""Tiny hand-made inputs for the reader-study tests: 16-bit MG DICOMs (64 x 48) and manifests."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cemsynth.reader_study.build import BuildResult, build_study

ROWS, COLS = 64, 48
START = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
MANIFEST_HEADER = [
    "patient_id",
    "study_uid",
    "laterality",
    "view",
    "le_path",
    "rc_path",
    "lesion_present",
    "bpe_grade",
]
# Identifying values the de-identified copies must not contain.
SECRETS = ("DOE^JANE", "General Hospital", "19700101", "20240102", "ACC123", "Dr^Who", "Station 7")


def write_source_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    patient_id: str,
    laterality: str,
    view: str,
    study_uid: str,
    description: str,
    burned_in: str = "NO",
) -> str:
    """A realistic-looking source DICOM full of identifiers; returns its SOPInstanceUID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.1.2")
    sop = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MG"
    ds.PatientName = "DOE^JANE"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240102"
    ds.AccessionNumber = "ACC123"
    ds.InstitutionName = "General Hospital"
    ds.ReferringPhysicianName = "Dr^Who"
    ds.StationName = "Station 7"
    ds.SeriesDescription = description
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.BurnedInAnnotation = burned_in
    ds.ImagerPixelSpacing = [0.1, 0.1]
    ds.WindowCenter = 2000 if description.startswith("clinical") else 30000
    ds.WindowWidth = 4000
    ds.add_new(0x00091010, "LO", description)  # a private tag
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return str(sop)


@dataclass
class Cohort:
    """A manifest, its clinical folder and a synthetic folder with matching relative paths."""

    root: Path
    manifest: Path
    synthetic: Path
    breasts: list[tuple[str, str, int, str]]  # patient, laterality, lesion, bpe
    originals: dict[Path, str]  # source file -> SOPInstanceUID

    def rows(self) -> list[dict[str, str]]:
        with self.manifest.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def write_rows(self, rows: list[dict[str, str]]) -> None:
        with self.manifest.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def make_cohort(root: Path, n_patients: int = 6, seed: int = 0) -> Cohort:
    """``n_patients`` patients; every second one has only a left breast."""
    rng = np.random.default_rng(seed)
    synthetic = root / "synthetic"
    rows = []
    breasts = []
    originals: dict[Path, str] = {}
    for p in range(n_patients):
        patient = f"P{p:03d}"
        study_uid = generate_uid()
        sides = ("L", "R") if p % 2 == 0 else ("L",)
        for side in sides:
            lesion = int(rng.integers(0, 2))
            bpe = "abcd"[int(rng.integers(0, 4))]
            breasts.append((patient, side, lesion, bpe))
            for view in ("CC", "MLO"):
                rel = f"{patient}/{side}_{view}_rc.dcm"
                clinical = rng.integers(500, 4000, size=(ROWS, COLS)).astype(np.uint16)
                fake = rng.integers(10000, 60000, size=(ROWS, COLS)).astype(np.uint16)
                common = {
                    "patient_id": patient,
                    "laterality": side,
                    "view": view,
                    "study_uid": study_uid,
                }
                path = root / "cohort" / rel
                originals[path] = write_source_dicom(
                    path, clinical, description="clinical RC", **common
                )
                path = synthetic / rel
                originals[path] = write_source_dicom(
                    path, fake, description="synthetic by cemsynth", **common
                )
                rows.append(
                    {
                        "patient_id": patient,
                        "study_uid": study_uid,
                        "laterality": side,
                        "view": view,
                        "le_path": f"{patient}/{side}_{view}_le.dcm",
                        "rc_path": rel,
                        # the lesion may show on one view only; the breast is positive then
                        "lesion_present": str(lesion if view == "CC" else 0),
                        "bpe_grade": bpe,
                    }
                )
    manifest = root / "cohort" / "manifest.csv"
    cohort = Cohort(root, manifest, synthetic, breasts, originals)
    cohort.write_rows(rows)
    return cohort


@pytest.fixture
def cohort(tmp_path: Path) -> Cohort:
    return make_cohort(tmp_path / "inputs")


StudyBuilder = Callable[..., BuildResult]


@pytest.fixture
def build(cohort: Cohort, tmp_path: Path) -> StudyBuilder:
    """Build a study from ``cohort``; keyword arguments override the defaults used here."""

    def run(**overrides: object) -> BuildResult:
        arguments: dict[str, object] = {
            "manifest": cohort.manifest,
            "clinical_dir": cohort.manifest.parent,
            "synthetic_dir": cohort.synthetic,
            "readers": ["R1", "R2", "R3"],
            "out": tmp_path / "study",
            "seed": 7,
            "washout_days": 14,
            "start": START,
        }
        arguments.update(overrides)
        return build_study(**arguments)  # type: ignore[arg-type]

    return run


@dataclass
class BuiltStudy:
    """A study built once per test session from its own cohort (read-only: copy to change)."""

    cohort: Cohort
    result: BuildResult


@pytest.fixture(scope="session")
def built_study(tmp_path_factory: pytest.TempPathFactory) -> BuiltStudy:
    root = tmp_path_factory.mktemp("built")
    shared = make_cohort(root / "inputs")
    result = build_study(
        shared.manifest,
        shared.manifest.parent,
        shared.synthetic,
        ["R1", "R2", "R3"],
        root / "study",
        seed=7,
        washout_days=14,
        start=START,
    )
    return BuiltStudy(shared, result)


@pytest.fixture
def study_copy(built_study: BuiltStudy, tmp_path: Path) -> BuildResult:
    """A private copy of the session's study (its answers database starts empty)."""
    target = tmp_path / "study"
    shutil.copytree(built_study.result.root, target)
    result = built_study.result
    return BuildResult(
        root=target,
        n_breasts=result.n_breasts,
        n_cases=result.n_cases,
        n_images=result.n_images,
        credentials_path=target / "key" / "credentials.csv",
        seed=result.seed,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``cemsynth reader-study serve`` as a real subprocess on 127.0.0.1."""

    def __init__(self, study: Path, port: int, log: Path) -> None:
        self.study, self.port, self.log = study, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cemsynth",
                    "reader-study",
                    "serve",
                    str(self.study),
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
