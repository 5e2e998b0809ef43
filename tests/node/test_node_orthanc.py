"""The DICOM node end to end with a real PACS: Debian's Orthanc on loopback only, the node as
its own ``cemsynth serve-dicom`` process, images sent by pynetdicom or routed by Orthanc.

The test process first moves into a network namespace where only ``lo`` exists
(tests/orthanc.py): Orthanc 1.10 cannot be told to listen on loopback only, and every process
started afterwards (Orthanc, the node) inherits the namespace.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts

from orthanc import OrthancServer, enter_loopback_only_network, free_port, orthanc_skip_reason

_SKIP_REASON = orthanc_skip_reason()

pytestmark = [
    pytest.mark.xdist_group("orthanc"),
    pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""),
]

NODE_AET = "CEMSYNTH"
PACS_AET = "PACS"
LE_FILES = ("L_CC_LE.dcm", "L_MLO_LE.dcm", "R_CC_LE.dcm", "R_MLO_LE.dcm")


@pytest.fixture(autouse=True)
def _quiet_pynetdicom() -> Iterator[None]:
    logger = logging.getLogger("pynetdicom")
    level = logger.level
    logger.setLevel(logging.CRITICAL)  # refused connections are expected in some tests
    yield
    logger.setLevel(level)


class NodeProcess:
    """``cemsynth serve-dicom`` as a separate process (so it can be killed with SIGKILL)."""

    def __init__(self, model: Path, state_dir: Path, destination: str, *extra: str) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.args = [
            sys.executable, "-m", "cemsynth", "serve-dicom", "--model", str(model),
            "--out", str(state_dir), "--port", str(self.port), "--ae-title", NODE_AET,
            "--destination", destination, *extra,
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.state_dir.parent / f"{self.state_dir.name}-console.log", "ab")  # noqa: SIM115
        env = dict(os.environ, OMP_NUM_THREADS="1")
        starts = self.log().count("listening as")  # node.log survives restarts
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        _wait_for(
            lambda: self.log().count("listening as") > starts, "the node to listen", process=self
        )

    def log(self) -> str:
        path = self.state_dir / "node.log"
        return path.read_text() if path.exists() else ""

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
            self.process = None

    def done(self) -> int:
        return len(list((self.state_dir / "done").glob("*.json")))


def _wait_for(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = 90.0,
    process: NodeProcess | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.process is not None:
            assert process.process.poll() is None, f"the node exited: {process.log()}"
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _store(port: int, paths: list[Path], calling: str = "MODALITY") -> list[int]:
    ae = AE(ae_title=calling)
    ae.requested_contexts = StoragePresentationContexts[:60]
    association = ae.associate("127.0.0.1", port, ae_title=NODE_AET)
    assert association.is_established
    statuses = [int(association.send_c_store(dcmread(path)).Status) for path in paths]
    association.release()
    return statuses


def _synthetic_instances(pacs: OrthancServer) -> list[dict[str, str]]:
    found = []
    for instance in pacs.instances():
        tags = pacs.instance_tags(instance)
        if "SYNTHETIC" in tags.get("SeriesDescription", ""):
            found.append(tags)
    return found


def _source_uids(instances: list[dict[str, object]]) -> list[str]:
    uids = []
    for tags in instances:
        sources = tags["SourceImageSequence"]
        assert isinstance(sources, list)
        uids.append(str(sources[0]["ReferencedSOPInstanceUID"]))
    return uids


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[OrthancServer]:
    enter_loopback_only_network()
    server = OrthancServer(tmp_path / "orthanc", aet=PACS_AET)
    server.start()
    yield server
    server.kill()


def test_an_exam_sent_to_the_node_lands_labelled_in_the_same_study_on_the_pacs(
    pacs: OrthancServer, node_model: Path, cem_exam: Path, tmp_path: Path
) -> None:
    exam = sorted(cem_exam.glob("*.dcm"))
    # the PACS holds the exam, as it would after the modality stored it there
    ae = AE(ae_title="MODALITY")
    ae.requested_contexts = StoragePresentationContexts[:60]
    association = ae.associate("127.0.0.1", pacs.dicom_port, ae_title=PACS_AET)
    assert all(association.send_c_store(dcmread(p)).Status == 0 for p in exam)
    association.release()
    node = NodeProcess(node_model, tmp_path / "node", f"{PACS_AET}@127.0.0.1:{pacs.dicom_port}")
    node.start()
    try:
        assert set(_store(node.port, exam)) == {0}
        _wait_for(lambda: node.done() == 4, "4 deliveries", process=node)
    finally:
        node.stop()
    assert len(pacs.patients()) == 1
    assert len(pacs.studies()) == 1  # the synthetic series is in the exam's own study
    synthetic = _synthetic_instances(pacs)
    assert len(synthetic) == 4
    le_images = {dcmread(cem_exam / name).SOPInstanceUID: cem_exam / name for name in LE_FILES}
    assert sorted(_source_uids(synthetic)) == sorted(le_images)
    for tags in synthetic:
        le = dcmread(le_images[tags["SourceImageSequence"][0]["ReferencedSOPInstanceUID"]])
        assert tags["StudyInstanceUID"] == le.StudyInstanceUID
        assert tags["PatientID"] == le.PatientID
        assert "DERIVED" in tags["ImageType"]
        assert (int(tags["Rows"]), int(tags["Columns"])) == (le.Rows, le.Columns)
        assert [float(v) for v in tags["ImagerPixelSpacing"].split("\\")] == [
            float(v) for v in le.ImagerPixelSpacing
        ]
        assert tags["ImageLaterality"] == le.ImageLaterality
        assert tags["Manufacturer"] != le.get("Manufacturer")
    # its statistics say so too: 8 images of the exam and 4 synthetic ones
    assert pacs.statistics()["CountInstances"] == 12


def test_a_pacs_that_routes_the_exam_to_the_node_gets_the_synthetic_series_back(
    tmp_path: Path, node_model: Path, cem_exam: Path
) -> None:
    enter_loopback_only_network()
    node_port = free_port()
    pacs = OrthancServer(
        tmp_path / "orthanc",
        aet=PACS_AET,
        extra_config={"DicomModalities": {"cemsynth": [NODE_AET, "127.0.0.1", node_port]}},
    )
    pacs.start()
    node = NodeProcess(
        node_model,
        tmp_path / "node",
        f"{PACS_AET}@127.0.0.1:{pacs.dicom_port}",
        "--allow-callers",
        "MODALITY",
    )
    node.port = node_port
    node.args[node.args.index("--port") + 1] = str(node_port)
    try:
        ae = AE(ae_title="MODALITY")
        ae.requested_contexts = StoragePresentationContexts[:60]
        association = ae.associate("127.0.0.1", pacs.dicom_port, ae_title=PACS_AET)
        for path in sorted(cem_exam.glob("*.dcm")):
            assert association.send_c_store(dcmread(path)).Status == 0
        association.release()
        (study,) = pacs.studies()
        node.start()
        # the PACS's AE title is not among the allowed callers: refused, nothing queued
        with pytest.raises(httpx.HTTPStatusError):  # Orthanc: 500, association rejected
            pacs.post_json(
                "/modalities/cemsynth/store", {"Resources": [study], "Synchronous": True}
            )
        assert "PACS" in node.log() and "rejected" in node.log()
        node.stop()
        node.args[node.args.index("--allow-callers") + 1] = f"MODALITY,{PACS_AET}"
        node.start()
        pacs.post_json("/modalities/cemsynth/store", {"Resources": [study], "Synchronous": True})
        _wait_for(lambda: node.done() == 4, "4 deliveries", process=node)
        assert pacs.studies() == [study]
        assert len(_synthetic_instances(pacs)) == 4
    finally:
        node.stop()
        pacs.kill()
    lines = node.log().splitlines()
    assert sum(line.endswith(" queued") and "not queued" not in line for line in lines) == 4
    assert sum("recombined image" in line for line in lines) == 4  # acknowledged, ignored


def test_pacs_down_then_up_delivers_after_retry(
    pacs: OrthancServer, node_model: Path, cem_exam: Path, tmp_path: Path
) -> None:
    node = NodeProcess(node_model, tmp_path / "node", f"{PACS_AET}@127.0.0.1:{pacs.dicom_port}")
    node.start()
    try:
        pacs.stop()
        assert _store(node.port, [cem_exam / name for name in LE_FILES[:2]]) == [0, 0]
        _wait_for(lambda: node.log().count("next try in") >= 2, "two failed tries", process=node)
        assert node.done() == 0
        pacs.start()
        _wait_for(lambda: node.done() == 2, "2 deliveries after the PACS came back", process=node)
    finally:
        node.stop()
    assert sorted(_source_uids(_synthetic_instances(pacs))) == sorted(
        dcmread(cem_exam / name).SOPInstanceUID for name in LE_FILES[:2]
    )


def test_a_node_killed_with_sigkill_resumes_and_sends_each_image_once(
    pacs: OrthancServer, node_model: Path, cem_exam: Path, tmp_path: Path
) -> None:
    node = NodeProcess(node_model, tmp_path / "node", f"{PACS_AET}@127.0.0.1:{pacs.dicom_port}")
    node.start()
    pacs.stop()  # so that images are certainly still queued when the node is killed
    assert _store(node.port, [cem_exam / name for name in LE_FILES]) == [0] * 4
    outgoing = node.state_dir / "queue" / "outgoing"
    _wait_for(lambda: any(outgoing.glob("*.dcm")), "a synthesized image", process=node)
    node.kill()  # each image was acknowledged, so each must arrive, once
    queued = [
        p for d in ("incoming", "outgoing") for p in (node.state_dir / "queue" / d).glob("*.dcm")
    ]
    assert len(queued) == 4 and node.done() == 0
    pacs.start()
    node.start()
    try:
        _wait_for(lambda: node.done() == 4, "4 deliveries after the restart", process=node)
    finally:
        node.stop()
    synthetic = _synthetic_instances(pacs)
    sources = _source_uids(synthetic)
    assert sorted(sources) == sorted(dcmread(cem_exam / name).SOPInstanceUID for name in LE_FILES)
    assert len(sources) == len(set(sources)) == 4  # exactly one synthetic image per LE image


def test_a_corrupt_image_among_good_ones_is_refused_and_logged(
    pacs: OrthancServer, node_model: Path, cem_exam: Path, tmp_path: Path
) -> None:
    corrupt = dcmread(cem_exam / "R_CC_LE.dcm")
    corrupt.SOPInstanceUID = "1.2.826.0.1.3680043.9.9999.7"
    corrupt.PixelData = corrupt.PixelData[: len(corrupt.PixelData) // 3]
    corrupt_path = tmp_path / "corrupt.dcm"
    corrupt.save_as(corrupt_path)
    node = NodeProcess(node_model, tmp_path / "node", f"{PACS_AET}@127.0.0.1:{pacs.dicom_port}")
    node.start()
    try:
        statuses = _store(
            node.port, [cem_exam / "L_CC_LE.dcm", corrupt_path, cem_exam / "L_MLO_LE.dcm"]
        )
        assert statuses == [0, 0xC210, 0]
        _wait_for(lambda: node.done() == 2, "2 deliveries", process=node)
    finally:
        node.stop()
    assert len(_synthetic_instances(pacs)) == 2
    (reason,) = [p.read_text() for p in (node.state_dir / "quarantine").glob("*.txt")]
    assert "truncated" in reason
    assert sum("kept as" in line for line in node.log().splitlines()) == 1
