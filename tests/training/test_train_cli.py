"""``cemsynth train``: a run, resume, one-line errors; DDP with torchrun (2 gloo processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
import yaml

from cemsynth.training import read_checkpoint

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type

TINY_YAML = {
    "preset": "small",
    "model": {"gen_width": 4, "gen_residual_blocks": 1, "disc_width": 4},
    "batch_size": 2,
    "patch_size": 32,
    "max_steps": 4,
    "val_every": 2,
    "val_patches": 4,
    "log_every": 2,
    "checkpoint_every": 2,
    "tensorboard": False,
}


@pytest.fixture
def tiny_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(TINY_YAML))
    return path


def test_train_then_resume_further(
    tiny_cache: Path, tiny_yaml: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    run = tmp_path / "run"
    args = ["train", str(tiny_cache), "--out", str(run), "--config", str(tiny_yaml)]
    code, out, _ = run_cli([*args, "--device", "cpu", "--seed", "1"])
    assert code == 0, out
    assert "step 4 in" in out and "best.pt" in out
    # --resume alone continues with the checkpoint's settings; --max-steps extends the run
    code, out, err = run_cli(
        ["train", str(tiny_cache), "--out", str(run), "--resume", "--max-steps", "6"]
    )
    assert code == 0, err
    assert "step 6 in" in out
    data = read_checkpoint(run / "last.pt")
    assert data["step"] == 6 and data["train_config"]["seed"] == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "paper"], "was trained with a different architecture"),
        (["--seed", "5"], "other settings (seed 0 vs 5"),
    ],
)
def test_resume_with_other_settings_is_one_line(
    tiny_cache: Path,
    tiny_yaml: Path,
    tmp_path: Path,
    run_cli: RunCli,
    extra: list[str],
    message: str,
) -> None:
    run = tmp_path / "run"
    base = ["train", str(tiny_cache), "--out", str(run)]
    assert run_cli([*base, "--config", str(tiny_yaml), "--max-steps", "2"])[0] == 0
    code, _, err = run_cli([*base, "--resume", *extra])
    assert code == 2
    assert message in err
    assert err.startswith("cemsynth: error:") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "huge"], "unknown training preset 'huge'; valid presets: paper, small"),
        (["--resume"], "nothing to resume"),
        (["--device", "gpu"], "device must be one of auto, cpu, cuda"),
    ],
)
def test_bad_arguments_give_one_line(
    tiny_cache: Path,
    tmp_path: Path,
    run_cli: RunCli,
    args: list[str],
    message: str,
) -> None:
    code, _, err = run_cli(["train", str(tiny_cache), "--out", str(tmp_path / "r"), *args])
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_out_of_memory_is_one_line_that_says_what_to_do(
    tiny_cache: Path,
    tiny_yaml: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    from cemsynth.training.step import TrainStep

    def exhausted(self: TrainStep, le: torch.Tensor, rc: torch.Tensor) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TrainStep, "__call__", exhausted)
    run = tmp_path / "r"
    code, _, err = run_cli(
        ["train", str(tiny_cache), "--out", str(run), "--config", str(tiny_yaml)]
    )
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("cemsynth: error:")]
    assert len(errors) == 1, err
    assert "out of CPU memory at batch 2" in errors[0] and "lower batch_size" in errors[0]


def test_missing_cache_is_one_line(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli(["train", str(tmp_path / "none"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no such cache folder; make one with: cemsynth preprocess" in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.slow
def test_torchrun_two_gloo_processes_keep_replicas_equal(
    tiny_cache: Path, tiny_yaml: Path, tmp_path: Path
) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "cemsynth", "train", str(tiny_cache), "--out", str(run),
        "--config", str(tiny_yaml), "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("step 4 in") == 1  # only rank 0 reports
    data = read_checkpoint(run / "last.pt")
    assert data["world_size"] == 2 and data["step"] == 4
    # every rank's weights hashed at the checkpoint: identical replicas
    assert len(data["replica_sha256"]) == 2
    assert data["replica_sha256"][0] == data["replica_sha256"][1]
    # each rank drew its own patches: two different sampler streams were saved
    states = [rank["sampler"]["state"]["state"] for rank in data["rng"]]
    assert states[0] != states[1]
    # rank 0 alone wrote the logs: one header, one row per log step
    rows = (run / "train_log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == ["2", "4"]
    assert torch.isfinite(torch.tensor([float(v) for v in rows[-1].split(",")[3:]])).all()
