"""The durable queue: states are folders, and a crash between any two steps is recovered."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cemsynth.errors import CemsynthError
from cemsynth.node.queue import DONE, FAILED, INCOMING, OUTGOING, Job, NodeQueue, job_key


def _arrival(queue: NodeQueue, text: str = "LE") -> Path:
    path = queue.receiving_path()
    path.write_text(text)
    return path


def _job(uid: str = "1.2.3") -> Job:
    return Job(job_key(uid), uid, received_at=time.time(), origin="test")


def test_a_job_moves_through_its_states(tmp_path: Path) -> None:
    with NodeQueue(tmp_path) as queue:
        job = _job()
        assert queue.admit(_arrival(queue), job) is None
        assert queue.state_of(job.key) == "incoming"
        assert [j.key for j in queue.pending(INCOMING)] == [job.key]
        synthetic = queue.receiving_path()
        synthetic.write_text("RC")
        queue.synthesized(job, synthetic)
        assert queue.state_of(job.key) == "outgoing"
        assert queue.pending(INCOMING) == []
        assert queue.image_path(OUTGOING, job).read_text() == "RC"
        job.delivered_at = time.time()
        queue.delivered(job)
        assert queue.state_of(job.key) == "done"
        counts = queue.counts()
        assert (counts.incoming, counts.outgoing, counts.done) == (0, 0, 1)
        record = json.loads((tmp_path / DONE / f"{job.key}.json").read_text())
        assert record["sop_instance_uid"] == "1.2.3"


def test_the_same_le_image_is_queued_once_in_every_state(tmp_path: Path) -> None:
    with NodeQueue(tmp_path) as queue:
        job = _job()
        queue.admit(_arrival(queue), job)
        again = _arrival(queue)
        assert queue.admit(again, _job()) == "incoming"
        assert not again.exists()  # the duplicate's file is dropped, not queued
        synthetic = queue.receiving_path()
        synthetic.write_text("RC")
        queue.synthesized(job, synthetic)
        assert queue.admit(_arrival(queue), _job()) == "outgoing"
        queue.delivered(job)
        assert queue.admit(_arrival(queue), _job()) == "done"
        other = _job("1.2.4")
        queue.admit(_arrival(queue), other)
        queue.failed(other, "no breast found")
        assert queue.admit(_arrival(queue), _job("1.2.4")) == "failed"
        assert json.loads((tmp_path / FAILED / f"{other.key}.json").read_text())["error"] == (
            "no breast found"
        )


def test_oldest_arrival_first(tmp_path: Path) -> None:
    with NodeQueue(tmp_path) as queue:
        for uid, at in (("1.9", 30.0), ("1.1", 10.0), ("1.5", 20.0)):
            queue.admit(_arrival(queue), Job(job_key(uid), uid, received_at=at, origin="t"))
        assert [job.sop_instance_uid for job in queue.pending(INCOMING)] == ["1.1", "1.5", "1.9"]


def test_a_second_node_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with NodeQueue(tmp_path), pytest.raises(CemsynthError, match="already in use by a running"):
        NodeQueue(tmp_path).open()
    with NodeQueue(tmp_path):  # released when the first one closed
        pass


def test_recovery_after_a_crash_at_each_step(tmp_path: Path) -> None:
    with NodeQueue(tmp_path) as queue:
        # a partial arrival (the sender got no success)
        partial = _arrival(queue, "half")
        # crashed after the record, before the image was renamed in
        (tmp_path / INCOMING / "1.1.json").write_text(_job("1.1").to_json())
        # crashed after synthesis was renamed in, before the LE copy was removed
        both = _job("1.2")
        queue.admit(_arrival(queue), both)
        (tmp_path / OUTGOING / "1.2.json").write_text(both.to_json())
        (tmp_path / OUTGOING / "1.2.dcm").write_text("RC")
        # crashed after the done record, before the outgoing image was removed
        sent = _job("1.3")
        queue.admit(_arrival(queue), sent)
        (tmp_path / OUTGOING / "1.3.json").write_text(sent.to_json())
        os.replace(tmp_path / INCOMING / "1.3.dcm", tmp_path / OUTGOING / "1.3.dcm")
        (tmp_path / INCOMING / "1.3.json").unlink()
        (tmp_path / DONE / "1.3.json").write_text(sent.to_json())
        # an image received whose record was lost (written by hand here)
        (tmp_path / INCOMING / "1.4.dcm").write_text("LE")
    with NodeQueue(tmp_path) as queue:  # open() recovers
        assert not partial.exists()
        assert queue.state_of("1.1") is None
        assert queue.state_of("1.2") == "outgoing"
        assert not (tmp_path / INCOMING / "1.2.dcm").exists()
        assert queue.state_of("1.3") == "done"
        assert not (tmp_path / OUTGOING / "1.3.dcm").exists()
        assert [job.key for job in queue.pending(INCOMING)] == ["1.4"]
        assert [job.key for job in queue.pending(OUTGOING)] == ["1.2"]


def test_job_keys_are_safe_file_names() -> None:
    assert job_key("1.2.840.113619.2") == "1.2.840.113619.2"
    assert job_key("../../etc") == "etc"
    with pytest.raises(ValueError):
        job_key("  ")


def test_recovery_of_a_job_that_failed_halfway(tmp_path: Path) -> None:
    with NodeQueue(tmp_path) as queue:
        job = _job("1.5")
        queue.admit(_arrival(queue), job)
        job.error = "no breast found"
        # crashed after the failed record was written, before the image was moved
        (tmp_path / FAILED / "1.5.json").write_text(job.to_json())
    with NodeQueue(tmp_path) as queue:
        assert queue.state_of("1.5") == "failed"
        assert (tmp_path / FAILED / "1.5.dcm").read_text() == "LE"
        assert queue.pending(INCOMING) == []
        assert queue.counts().failed == 1
