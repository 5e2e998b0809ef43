"""The synthesis and delivery workers with stand-in destinations: what is retried, what
fails for good, and that one refused image does not hold up the others."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cemsynth.inference.config import RuntimeConfig
from cemsynth.inference.predictor import Predictor
from cemsynth.node.delivery import Backoff, DeliveryError
from cemsynth.node.intake import Intake
from cemsynth.node.queue import FAILED, INCOMING, OUTGOING, Job, NodeQueue, job_key
from cemsynth.node.service import NodeService
from cemsynth.node.status import StatusBoard


@dataclass
class Refusing:
    """Accepts every image but those of ``refused`` (LE UIDs); ``down``: nothing at all."""

    refused: set[str] = field(default_factory=set)
    down: bool = False
    delivered: list[str] = field(default_factory=list)

    def label(self) -> str:
        return "STANDIN@127.0.0.1:1"

    def deliver(self, path: Path, job: Job) -> None:
        if self.down:
            raise DeliveryError("destination STANDIN did not answer")
        if job.sop_instance_uid in self.refused:
            raise DeliveryError("destination STANDIN: C-STORE status 0xA900", connection=False)
        self.delivered.append(job.sop_instance_uid)

    def close(self) -> None:
        return None


def _outgoing(queue: NodeQueue, uid: str, at: float) -> Job:
    job = Job(job_key(uid), uid, received_at=at, origin="test")
    arrival = queue.receiving_path()
    arrival.write_text("LE")
    queue.admit(arrival, job)
    synthetic = queue.receiving_path()
    synthetic.write_text("RC")
    queue.synthesized(job, synthetic)
    return job


@pytest.fixture
def predictor(node_model: Path) -> Predictor:
    return Predictor.load(node_model, RuntimeConfig(backend="torch", threads=1))


def test_one_refused_image_does_not_hold_up_the_others(
    tmp_path: Path, predictor: Predictor
) -> None:
    with NodeQueue(tmp_path) as queue:
        for number in range(3):
            _outgoing(queue, f"1.{number}", at=float(number))
        destination = Refusing(refused={"1.0"})  # the oldest
        board = StatusBoard(queue, {})
        service = NodeService(queue, predictor, destination, board, Backoff(first_s=30))
        assert service.deliver_waiting() is False
        assert destination.delivered == ["1.1", "1.2"]
        assert [job.sop_instance_uid for job in queue.pending(OUTGOING)] == ["1.0"]
        (kept,) = queue.pending(OUTGOING)
        assert kept.attempts == 1 and "0xA900" in kept.error
        assert board.next_retry_at is not None and board.next_retry_at > time.time() + 20


def test_a_destination_that_is_down_ends_the_round_and_keeps_everything(
    tmp_path: Path, predictor: Predictor
) -> None:
    with NodeQueue(tmp_path) as queue:
        for number in range(3):
            _outgoing(queue, f"1.{number}", at=float(number))
        destination = Refusing(down=True)
        board = StatusBoard(queue, {})
        service = NodeService(queue, predictor, destination, board)
        assert service.deliver_waiting() is False
        assert [job.attempts for job in queue.pending(OUTGOING)] == [1, 0, 0]
        destination.down = False
        assert service.deliver_waiting() is True
        assert destination.delivered == ["1.0", "1.1", "1.2"]
        assert board.destination_down_since is None
        assert queue.counts().done == 3


def test_an_image_the_model_cannot_use_fails_and_a_write_problem_is_retried(
    tmp_path: Path, predictor: Predictor, cem_exam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from pydicom import dcmread

    with NodeQueue(tmp_path / "state") as queue:
        intake = Intake(queue)
        flat = dcmread(cem_exam / "L_CC_LE.dcm")
        flat.SOPInstanceUID = "1.2.826.0.1.3680043.9.9999.3"
        pixels = np.full((flat.Rows, flat.Columns), 9, dtype=np.uint16)
        pixels[0, 0] = 10  # not blank, but no breast
        flat.PixelData = pixels.tobytes()
        for name, ds in (("flat", flat), ("good", dcmread(cem_exam / "L_MLO_LE.dcm"))):
            arrival = queue.receiving_path()
            ds.save_as(arrival)
            assert intake.take(arrival, "test", name).outcome == "queued"
        service = NodeService(queue, predictor, Refusing(), StatusBoard(queue, {}))
        bad, good = sorted(queue.pending(INCOMING), key=lambda job: job.key != flat.SOPInstanceUID)
        assert service.synthesize_one(bad) is True
        assert queue.state_of(bad.key) == "failed"
        assert (tmp_path / "state" / FAILED / f"{bad.key}.dcm").exists()

        from cemsynth.errors import InputFileError
        from cemsynth.inference import dicom_out

        def full_disk(path: Path, ds: object) -> None:
            raise InputFileError(path, "cannot write: No space left on device")

        monkeypatch.setattr(dicom_out, "save_dataset", full_disk)
        assert service.synthesize_one(good) is False
        assert queue.state_of(good.key) == "incoming"  # kept for the next try
        monkeypatch.undo()
        assert service.synthesize_one(good) is True
        assert queue.state_of(good.key) == "outgoing"


def test_other_objects_of_an_exam_are_ignored_not_quarantined(
    tmp_path: Path, cem_exam: Path
) -> None:
    from pydicom import dcmread

    with NodeQueue(tmp_path) as queue:
        intake = Intake(queue)
        report = dcmread(cem_exam / "R_CC_RC.dcm")  # the exam's patient and study
        dose_sr = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR
        report.SOPClassUID = report.file_meta.MediaStorageSOPClassUID = dose_sr
        report.Modality = "SR"
        report.SeriesDescription = "Dose report"
        for image_element in [*report.group_dataset(0x0028), report["PixelData"]]:
            del report[image_element.tag]
        del report.ImageType
        arrival = queue.receiving_path()
        report.save_as(arrival)
        result = intake.take(arrival, "test", "dose report")
        assert result.outcome == "ignored"
        assert "X-Ray Radiation Dose SR" in result.message
        assert queue.counts().quarantined == 0
        assert not arrival.exists()
