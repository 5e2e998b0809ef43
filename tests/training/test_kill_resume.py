"""Regression: ``cemsynth train`` killed with SIGKILL at arbitrary moments (also in the middle of
checkpoint writes, which happen every step here) resumes to the bitwise state of a run that was
never interrupted, and leaves no temporary files behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cemsynth.training import read_checkpoint

from .test_train import _assert_same_tensors

STEPS = 40
CONFIG = {
    "preset": "small",
    "model": {"gen_width": 4, "gen_residual_blocks": 1, "disc_width": 4},
    "batch_size": 2,
    "patch_size": 32,
    "max_steps": STEPS,
    "val_every": 10,
    "val_patches": 4,
    "log_every": 1,
    "checkpoint_every": 1,  # a write in flight at almost any moment
    "tensorboard": False,
}


def _train(cache: Path, run: Path, config: Path, resume: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "cemsynth", "train", str(cache), "--out", str(run)]
    command += ["--resume"] if resume else ["--config", str(config), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic in every process
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _step(run: Path) -> int:
    try:
        return int(read_checkpoint(run / "last.pt")["step"])
    except Exception:  # not written yet, or being replaced right now
        return 0


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume_is_bitwise(tiny_cache: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    straight = _train(tiny_cache, tmp_path / "straight", config, resume=False)
    assert straight.wait(timeout=300) == 0, straight.stderr.read() if straight.stderr else ""

    run = tmp_path / "killed"
    kills = 0
    for attempt, delay_s in enumerate((0.0, 0.013, 0.031, 0.057)):
        process = _train(tiny_cache, run, config, resume=attempt > 0)
        start_step = _step(run)
        deadline = time.monotonic() + 120
        while _step(run) < start_step + 3 and process.poll() is None:
            assert time.monotonic() < deadline, "training made no progress"
            time.sleep(0.005)
        time.sleep(delay_s)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        assert _step(run) < STEPS or process.returncode == 0
    assert kills >= 2, "the run finished before it could be killed; make it longer"

    final = _train(tiny_cache, run, config, resume=True)
    assert final.wait(timeout=300) == 0, final.stderr.read() if final.stderr else ""
    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(run / "last.pt")
    for key in ("networks", "optimizers", "rng", "step", "replica_sha256"):
        _assert_same_tensors(a[key], b[key], key)
    assert not list(run.glob(".*.tmp")), "a killed write's temporary file was left behind"
