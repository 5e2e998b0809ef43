"""``serve-dicom`` in the test process, without a PACS: C-ECHO, C-STORE, what is queued,
ignored, quarantined or refused, the synthetic image and its labels, TLS, and the command."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydicom import dcmread
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import DigitalMammographyXRayImageStorageForPresentation, Verification

from cemsynth.node.delivery import Backoff, DicomDestination
from cemsynth.node.status import read_status, status_lines

from .conftest import RunningNode, StartNode

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type

MG = DigitalMammographyXRayImageStorageForPresentation


def _associate(port: int, calling: str = "MODALITY", **kwargs: object) -> object:
    ae = AE(ae_title=calling)
    ae.requested_contexts = StoragePresentationContexts[:60]
    ae.add_requested_context(Verification)
    return ae.associate("127.0.0.1", port, ae_title="CEMSYNTH", **kwargs)


def _wait_for(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _delivered(node: RunningNode, n: int) -> bool:
    return len(list((node.state_dir / "done").glob("*.json"))) >= n


def test_an_exam_is_stored_and_each_le_image_gets_one_labelled_synthetic_image(
    start_node: StartNode, cem_exam: Path
) -> None:
    node = start_node()
    association = _associate(node.port)
    assert association.is_established
    assert association.send_c_echo().Status == 0
    files = sorted(cem_exam.glob("*.dcm"))
    statuses = {f.name: association.send_c_store(dcmread(f)).Status for f in files}
    # the same LE image again: acknowledged, not queued twice
    assert association.send_c_store(dcmread(cem_exam / "L_CC_LE.dcm")).Status == 0
    association.release()
    assert set(statuses.values()) == {0}, statuses
    _wait_for(lambda: _delivered(node, 4))
    board = node.stop()
    assert board.counters["received"] == 4
    assert board.counters["ignored"] == 4  # the RC images
    assert board.counters["duplicates"] == 1
    assert board.counters["delivered"] == 4
    written = sorted((node.state_dir / "synthetic").glob("*.dcm"))
    assert len(written) == 4
    le = dcmread(cem_exam / "L_CC_LE.dcm")
    (synthetic,) = [dcmread(p) for p in written if "_L_CC_" in p.name]
    assert synthetic.StudyInstanceUID == le.StudyInstanceUID
    assert synthetic.PatientID == le.PatientID
    assert synthetic.SeriesInstanceUID != le.SeriesInstanceUID
    assert "SYNTHETIC" in synthetic.SeriesDescription
    assert "DERIVED" in synthetic.ImageType
    assert synthetic.SourceImageSequence[0].ReferencedSOPInstanceUID == le.SOPInstanceUID
    assert (synthetic.Rows, synthetic.Columns) == (le.Rows, le.Columns)
    assert [float(v) for v in synthetic.ImagerPixelSpacing] == [
        float(v) for v in le.ImagerPixelSpacing
    ]
    assert synthetic.ImageLaterality == le.ImageLaterality
    lines = status_lines(read_status(node.state_dir))
    assert "queue: 0 waiting for synthesis, 0 waiting for delivery" in lines
    assert "done: 4; failed: 0; quarantined: 0" in lines


def test_bad_data_is_refused_and_quarantined_and_the_node_goes_on(
    start_node: StartNode, cem_exam: Path
) -> None:
    node = start_node()
    association = _associate(node.port)
    truncated = dcmread(cem_exam / "R_CC_LE.dcm")
    truncated.SOPInstanceUID = "1.2.826.0.1.3680043.9.9999.1"
    truncated.PixelData = truncated.PixelData[:100]
    no_pixels = dcmread(cem_exam / "R_MLO_LE.dcm")
    no_pixels.SOPInstanceUID = "1.2.826.0.1.3680043.9.9999.2"
    del no_pixels.PixelData
    assert association.send_c_store(truncated).Status == 0xC210
    assert association.send_c_store(no_pixels).Status == 0xC210
    good = association.send_c_store(dcmread(cem_exam / "L_MLO_LE.dcm"))
    association.release()
    assert good.Status == 0
    _wait_for(lambda: _delivered(node, 1))
    node.stop()
    reasons = sorted(p.read_text() for p in (node.state_dir / "quarantine").glob("*.txt"))
    assert len(reasons) == 2
    assert "truncated" in reasons[1] or "truncated" in reasons[0]
    assert any("pixel data" in reason.lower() for reason in reasons)
    assert len(list((node.state_dir / "quarantine").glob("*.dcm"))) == 2
    log = (node.state_dir / "node.log").read_text()
    assert log.count("kept as") == 2
    status = read_status(node.state_dir)
    assert status["last_error"] is not None


def test_an_unsupported_transfer_syntax_is_refused_in_negotiation(start_node: StartNode) -> None:
    node = start_node()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(MG, ["1.2.840.10008.1.2.4.100"])  # MPEG-2 video
    ae.add_requested_context(Verification)
    association = ae.associate("127.0.0.1", node.port, ae_title="CEMSYNTH")
    assert association.is_established
    accepted = {cx.abstract_syntax for cx in association.accepted_contexts}
    assert MG not in accepted
    assert Verification in accepted
    association.release()
    assert _associate(node.port).is_established  # still serving


def test_callers_not_allowed_are_rejected(start_node: StartNode) -> None:
    node = start_node(allowed_callers=["MODALITY"])
    stranger = _associate(node.port, calling="STRANGER")
    assert stranger.is_rejected
    friend = _associate(node.port, calling="MODALITY")
    assert friend.is_established
    friend.release()
    node.stop()
    assert "STRANGER" in (node.state_dir / "node.log").read_text()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(start_node: StartNode, tmp_path: Path) -> None:
    cert, key = tmp_path / "node.crt", tmp_path / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    node = start_node(tls_cert=cert, tls_key=key)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
    client.check_hostname = False
    secure = _associate(node.port, tls_args=(client, None))
    assert secure.is_established
    assert secure.send_c_echo().Status == 0
    secure.release()
    assert not _associate(node.port).is_established  # plain DICOM to a TLS port


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_synthetic_images_are_sent_over_tls_to_a_destination_that_requires_it(
    start_node: StartNode, cem_exam: Path, tmp_path: Path
) -> None:
    from pynetdicom import AllStoragePresentationContexts, evt

    from .conftest import free_port

    cert, key = tmp_path / "pacs.crt", tmp_path / "pacs.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=pacs", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    received: list[str] = []
    pacs = AE(ae_title="PACS")
    for context in AllStoragePresentationContexts[:60]:
        pacs.add_supported_context(context.abstract_syntax)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    def on_store(event: object) -> int:
        received.append(str(event.dataset.SOPInstanceUID))  # type: ignore[attr-defined]
        return 0

    port = free_port()
    server = pacs.start_server(
        ("127.0.0.1", port),
        block=False,
        ssl_context=server_tls,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    try:
        node = start_node(destination=f"PACS@127.0.0.1:{port}", destination_tls_ca=cert)
        association = _associate(node.port)
        assert association.send_c_store(dcmread(cem_exam / "L_CC_LE.dcm")).Status == 0
        association.release()
        _wait_for(lambda: len(received) == 1)
        node.stop()
    finally:
        server.shutdown()
    assert "(TLS)" in (node.state_dir / "node.log").read_text()


def test_a_destination_that_is_down_is_retried_and_nothing_is_lost(
    start_node: StartNode, cem_exam: Path
) -> None:
    from .conftest import free_port

    dead = free_port()
    node = start_node(destination=f"PACS@127.0.0.1:{dead}")
    association = _associate(node.port)
    assert association.send_c_store(dcmread(cem_exam / "L_CC_LE.dcm")).Status == 0
    association.release()
    _wait_for(lambda: "next try in" in (node.state_dir / "node.log").read_text())
    board = node.stop()
    assert board.counters["delivered"] == 0
    assert board.counters["delivery_retries"] >= 1
    assert len(list((node.state_dir / "queue" / "outgoing").glob("*.dcm"))) == 1
    assert "waiting for delivery" in " ".join(status_lines(read_status(node.state_dir)))


def test_destination_text_and_backoff() -> None:
    parsed = DicomDestination.parse("ORTHANC@127.0.0.1:4242", "CEMSYNTH")
    assert (parsed.ae_title, parsed.host, parsed.port) == ("ORTHANC", "127.0.0.1", 4242)
    from cemsynth.errors import ConfigError

    for bad in ("ORTHANC", "@host:1", "A@host:0", "A@host:99999", "A@host"):
        with pytest.raises(ConfigError, match="AET@HOST:PORT"):
            DicomDestination.parse(bad, "CEMSYNTH")
    backoff = Backoff(first_s=1, max_s=8)
    assert [backoff.failed() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    backoff.succeeded()
    assert backoff.failed() == 1


def test_serve_dicom_command_refuses_bad_settings_in_one_line(
    run_cli: RunCli, node_model: Path, tmp_path: Path
) -> None:
    result = run_cli(
        ["serve-dicom", "--model", str(node_model), "--out", str(tmp_path / "s"),
         "--destination", "nonsense"]
    )  # fmt: skip
    code, _, err = result
    assert code == 2
    assert err.strip().splitlines() == [
        "cemsynth: error: --destination 'nonsense': expected AET@HOST:PORT, e.g. "
        "ORTHANC@127.0.0.1:4242"
    ]
    result = run_cli(
        ["serve-dicom", "--model", str(node_model), "--out", str(tmp_path / "s"),
         "--tls-cert", str(tmp_path / "c.pem")]
    )  # fmt: skip
    code, _, err = result
    assert code == 2
    assert err.strip() == "cemsynth: error: TLS needs both --tls-cert and --tls-key"
    code, _, err = run_cli(
        ["serve-dicom", "--model", str(node_model), "--out", str(tmp_path / "s"),
         "--destination-tls-ca", str(tmp_path / "ca.pem")]
    )  # fmt: skip
    assert code == 2
    assert err.strip() == "cemsynth: error: --destination-tls-* options need a --destination"


def test_node_status_command(run_cli: RunCli, tmp_path: Path) -> None:
    code, _, err = run_cli(["node-status", str(tmp_path)])
    assert code == 2
    assert err.strip() == f"cemsynth: error: {tmp_path}: not a node's state folder (no node.lock)"
