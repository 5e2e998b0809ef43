"""Benchmark: the DICOM node's throughput and latency, against ``predict`` on the same images.

20 phantom LE images (5 patients of the demo's cohort: 0.4 mm, 712 x 598) are sent at once,
in one association, to ``cemsynth serve-dicom`` (its own process, as in a hospital), whose
destination is a C-STORE receiver in this process that notes when each synthetic image
arrives. Measured:

- **node**: images per minute from the first C-STORE sent to the last synthetic image
  received; latency per image from its C-STORE sent to its synthetic image received
  (median, 90th percentile, max); and, from the node's ``done/`` records, where the time goes:
  waiting in the queue, synthesis, delivery;
- **baseline, predict**: the same 20 images through the same model in this process, one after
  the other, the way ``cemsynth predict`` does it (read, synthesize, write the labelled DICOM):
  images per minute. The ratio node / predict says what the network path, the durable queue
  and delivery cost on top of synthesis.

The model: ``--model`` (default ``demo-output/run``, the demo's); without one, a randomly
initialised generator of the demo's preset (``unet``), which costs the same per image (the
cost does not depend on the weights), and the output says so.

    .venv/bin/python benchmarks/dicom_node.py
    .venv/bin/python benchmarks/dicom_node.py --model demo-output/run --images 20
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_PATIENTS_PER_4 = 4  # LE images per phantom patient


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cohort(folder: Path, n_images: int) -> list[Path]:
    from cemsynth.demo import DEMO_COHORT
    from cemsynth.phantom.cohort import write_cohort
    from cemsynth.phantom.config import PhantomConfig

    patients = -(-n_images // N_PATIENTS_PER_4)
    write_cohort(
        folder,
        n_patients=patients,
        seed=11,
        pixel_mm=DEMO_COHORT.pixel_mm,
        size=DEMO_COHORT.size,
        config=PhantomConfig(),
        workers=1,
    )
    return sorted(folder.glob("P*/*_LE.dcm"))[:n_images]


def _model(requested: Path | None, folder: Path) -> tuple[Path, str]:
    if requested is not None and requested.exists():
        return requested, str(requested)
    from cemsynth.demo import DEMO_TRAIN_PRESET
    from cemsynth.testing.checkpoints import random_checkpoint
    from cemsynth.training.config import get_train_preset

    config = get_train_preset(DEMO_TRAIN_PRESET)
    path = random_checkpoint(folder / "run" / "best.pt", config.model, None, 1, 0, 128)
    missing = f"{requested} not found; " if requested is not None else ""
    return path.parent, f"{missing}random '{DEMO_TRAIN_PRESET}' generator (same cost per image)"


class Receiver:
    """A C-STORE receiver standing in for the PACS: notes when each image arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}  # source LE UID -> arrival time
        self.port = _free_port()
        self.server = None

    def start(self) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title="BENCHPACS")
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax)

        def on_store(event: object) -> int:
            ds = event.dataset  # type: ignore[attr-defined]
            source = str(ds.SourceImageSequence[0].ReferencedSOPInstanceUID)
            self.arrivals[source] = time.time()
            return 0

        self.server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()  # type: ignore[attr-defined]


def _run_node(model: Path, images: list[Path], state: Path, threads: int) -> dict[str, object]:
    from pydicom import dcmread
    from pynetdicom import AE, StoragePresentationContexts

    receiver = Receiver()
    receiver.start()
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log = open(state.parent / "node-console.log", "wb")  # noqa: SIM115
    node = subprocess.Popen(
        [sys.executable, "-m", "cemsynth", "serve-dicom", "--model", str(model), "--out",
         str(state), "--port", str(port), "--destination",
         f"BENCHPACS@127.0.0.1:{receiver.port}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        node_log = state / "node.log"
        deadline = time.monotonic() + 120
        while "listening as" not in (node_log.read_text() if node_log.exists() else ""):
            if node.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the node did not start: {(state.parent / 'node-console.log')}")
            time.sleep(0.2)
        datasets = [dcmread(path) for path in images]
        uids = [str(ds.SOPInstanceUID) for ds in datasets]
        ae = AE(ae_title="BENCHMOD")
        ae.requested_contexts = StoragePresentationContexts[:60]
        sent: dict[str, float] = {}
        association = ae.associate("127.0.0.1", port, ae_title="CEMSYNTH")
        first = time.time()
        for uid, ds in zip(uids, datasets, strict=True):
            status = association.send_c_store(ds)
            sent[uid] = time.time()
            assert status.Status == 0, hex(status.Status)
        association.release()
        stored_s = time.time() - first
        deadline = time.monotonic() + 60 * 30
        while len(receiver.arrivals) < len(uids):
            if node.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the node stopped before delivering every image")
            time.sleep(0.1)
    finally:
        node.terminate()
        node.wait(60)
        receiver.stop()
        log.close()
    last = max(receiver.arrivals.values())
    latencies = sorted(receiver.arrivals[uid] - sent[uid] for uid in uids)
    records = [json.loads(p.read_text()) for p in (state / "done").glob("*.json")]
    records.sort(key=lambda r: r["synthesized_at"])
    synthesis, queue_wait, delivery = [], [], []
    previous_end = None
    for record in records:
        start = (
            record["received_at"]
            if previous_end is None
            else max(record["received_at"], previous_end)
        )
        synthesis.append(record["synthesized_at"] - start)
        queue_wait.append(start - record["received_at"])
        delivery.append(record["delivered_at"] - record["synthesized_at"])
        previous_end = record["synthesized_at"]
    return {
        "images": len(uids),
        "all_stored_s": stored_s,
        "images_per_minute": len(uids) / (last - first) * 60,
        "latency_s": {
            "median": statistics.median(latencies),
            "p90": latencies[int(0.9 * (len(latencies) - 1))],
            "max": latencies[-1],
            "min": latencies[0],
        },
        "per_image_s": {
            "queue_wait_mean": statistics.fmean(queue_wait),
            "synthesis_mean": statistics.fmean(synthesis),
            "delivery_mean": statistics.fmean(delivery),
        },
    }


def _run_predict(model: Path, images: list[Path], out: Path, threads: int) -> dict[str, float]:
    import torch

    from cemsynth.inference.config import RuntimeConfig
    from cemsynth.inference.dicom_out import write_synthetic_dicom
    from cemsynth.inference.predictor import Predictor
    from cemsynth.inference.run import settings_text
    from cemsynth.io.reader import read_image

    torch.set_num_threads(threads)
    predictor = Predictor.load(model, RuntimeConfig())
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    for index, path in enumerate(images):
        prediction = predictor.predict(read_image(path))
        write_synthetic_dicom(
            out / f"{index}.dcm",
            prediction.image,
            path,
            predictor.identity,
            predictor.preprocess_config.rc_window,
            settings_text(predictor),
        )
    seconds = time.time() - start
    return {"seconds": seconds, "images_per_minute": len(images) / seconds * 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("demo-output/run"))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cemsynth-node-bench-") as tmp:
        root = Path(tmp)
        images = _cohort(root / "cohort", args.images)
        model, model_text = _model(args.model, root)
        print(f"model: {model_text}; {len(images)} LE images of 712 x 598; {args.threads} threads")
        baseline = _run_predict(model, images, root / "predict", args.threads)
        node = _run_node(model, images, root / "state", args.threads)
    latency = node["latency_s"]
    parts = node["per_image_s"]
    assert isinstance(latency, dict) and isinstance(parts, dict)
    print(
        f"baseline, predict in-process: {baseline['seconds']:.1f} s, "
        f"{baseline['images_per_minute']:.1f} images/min"
    )
    print(
        f"node (serve-dicom, C-STORE in and out): {node['images_per_minute']:.1f} images/min "
        f"(ratio node/predict {node['images_per_minute'] / baseline['images_per_minute']:.2f}); "
        f"all {node['images']} C-STOREs answered in {node['all_stored_s']:.2f} s"
    )
    print(
        f"latency sent -> delivered: median {latency['median']:.1f} s, 90th percentile "
        f"{latency['p90']:.1f} s, min {latency['min']:.1f} s, max {latency['max']:.1f} s"
    )
    print(
        f"per image: waiting in the queue {parts['queue_wait_mean']:.1f} s, synthesis "
        f"{parts['synthesis_mean']:.2f} s, delivery {parts['delivery_mean']:.3f} s (means)"
    )
    print(json.dumps({"baseline_predict": baseline, "node": node}, indent=1))


if __name__ == "__main__":
    main()
