"""The Orthanc harness of the DICOM node's end-to-end tests (tests/orthanc.py): a real Orthanc,
on loopback only, that receives C-STORE, answers REST queries and can be stopped and started
again with its stored instances kept."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    DigitalMammographyXRayImageStorageForPresentation,
    Verification,
)

from orthanc import OrthancServer, enter_loopback_only_network, orthanc_skip_reason

_SKIP_REASON = orthanc_skip_reason()

pytestmark = [
    # One worker runs these, so `-n 2` starts one Orthanc, not one per worker.
    pytest.mark.xdist_group("orthanc"),
    pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""),
]

CALLING_AET = "CEMSYNTH_TEST"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    enter_loopback_only_network()
    server = OrthancServer(tmp_path_factory.mktemp("orthanc"), aet="TESTPACS")
    server.start()
    try:
        yield server
    finally:
        # Its storage is thrown away: no need for stop()'s 3.5 s of clean shutdown.
        server.kill()


@pytest.fixture(autouse=True)
def _quiet_pynetdicom() -> Iterator[None]:
    # A refused association is expected in one test; its error log is noise elsewhere.
    logger = logging.getLogger("pynetdicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def mammogram(patient_id: str = "ORTHANC-TEST-1") -> Dataset:
    """A small Digital Mammography (for presentation) image: 64x64, 16-bit, MONOCHROME2."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "Test^Orthanc"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "A1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "MG"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "cemsynth tests"
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageLaterality = "L"
    ds.ViewPosition = "CC"
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(64 * 64, dtype="<u2").tobytes()
    return ds


def associate(pacs: OrthancServer, *contexts: str) -> Association:
    ae = AE(ae_title=CALLING_AET)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    for context in contexts:
        ae.add_requested_context(context, ExplicitVRLittleEndian)
    return ae.associate("127.0.0.1", pacs.dicom_port, ae_title=pacs.aet)


def c_store(pacs: OrthancServer, ds: Dataset) -> int:
    """Status of a C-STORE of ``ds`` to the PACS; fails the test when no association is made."""
    assoc = associate(pacs, DigitalMammographyXRayImageStorageForPresentation)
    assert assoc.is_established, "Orthanc refused the association"
    try:
        status = assoc.send_c_store(ds)
    finally:
        assoc.release()
    assert "Status" in status, "no C-STORE response"
    return int(status.Status)


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_only_loopback_exists(pacs: OrthancServer) -> None:
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert pacs.system()["DicomAet"] == "TESTPACS"


def test_c_echo(pacs: OrthancServer) -> None:
    assoc = associate(pacs, Verification)
    assert assoc.is_established
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()


def test_c_store_is_visible_through_rest(pacs: OrthancServer) -> None:
    ds = mammogram()
    assert c_store(pacs, ds) == 0x0000
    found = pacs.find_instances(SOPInstanceUID=ds.SOPInstanceUID)
    assert len(found) == 1
    tags = pacs.instance_tags(found[0]["ID"])
    assert tags["StudyInstanceUID"] == ds.StudyInstanceUID
    assert tags["PatientID"] == ds.PatientID
    assert tags["SOPClassUID"] == DigitalMammographyXRayImageStorageForPresentation
    assert len(pacs.instance_file(found[0]["ID"])) > 64 * 64 * 2


def test_same_instance_twice_is_kept_once(pacs: OrthancServer) -> None:
    # What a node's resend after a lost C-STORE response meets: with the default
    # "OverwriteInstances": false, Orthanc answers Success and keeps the first copy only.
    ds = mammogram("ORTHANC-TEST-TWICE")
    before = pacs.statistics()["CountInstances"]
    assert c_store(pacs, ds) == 0x0000
    assert c_store(pacs, ds) == 0x0000
    assert pacs.statistics()["CountInstances"] == before + 1
    assert len(pacs.find_instances(SOPInstanceUID=ds.SOPInstanceUID)) == 1


def test_stop_ends_the_process_refuses_stores_and_start_keeps_them(pacs: OrthancServer) -> None:
    # What the node's retry tests rely on: a destination down, then up again with its data.
    ds = mammogram("ORTHANC-TEST-RESTART")
    assert c_store(pacs, ds) == 0x0000
    pid = pacs.pid
    assert pid is not None and pid_exists(pid)
    pacs.stop()
    try:
        assert pacs.pid is None
        assert not pid_exists(pid)
        assoc = associate(pacs, DigitalMammographyXRayImageStorageForPresentation)
        assert not assoc.is_established
    finally:
        pacs.start()
    assert pacs.pid not in (None, pid)
    assert len(pacs.find_instances(SOPInstanceUID=ds.SOPInstanceUID)) == 1
    assert c_store(pacs, mammogram("ORTHANC-TEST-AFTER")) == 0x0000


def test_kill_then_start_keeps_the_stored_instances(pacs: OrthancServer) -> None:
    ds = mammogram("ORTHANC-TEST-CRASH")
    assert c_store(pacs, ds) == 0x0000
    pid = pacs.pid
    assert pid is not None
    pacs.kill()
    try:
        assert not pid_exists(pid)
    finally:
        pacs.start()
    assert len(pacs.find_instances(SOPInstanceUID=ds.SOPInstanceUID)) == 1
