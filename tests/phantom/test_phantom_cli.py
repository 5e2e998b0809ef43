"""The ``cemsynth phantom`` command: arguments, one-line errors, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cemsynth.cli import app
from cemsynth.phantom import cohort as cohort_module

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


def test_phantom_command_writes_a_cohort(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, _ = run_cli(
        [
            "phantom",
            "--out",
            str(tmp_path),
            "--patients",
            "1",
            "--size",
            "small",
            "--seed",
            "3",
            "--workers",
            "1",
        ],
    )
    assert code == 0
    assert "wrote 4 LE/RC pairs" in out
    assert (tmp_path / "manifest.csv").is_file()
    assert (tmp_path / "phantom.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patients", "-3"], "--patients must be at least 1"),
        (["--patients", "0"], "--patients must be at least 1"),
        (["--size", "huge"], "valid sizes: full, small"),
        (["--pixel-mm", "5"], "--pixel-mm must be between"),
        (["--patients", "many"], "Invalid value for '--patients'"),
        (["--halo-share", "1.5"], "halo_share must be in [0, 1]"),
        (["--seed", "-1"], "--seed must be 0 or more"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    tmp_path: Path, run_cli: RunCli, args: list[str], message: str
) -> None:
    code, _, err = run_cli(["phantom", "--out", str(tmp_path / "o"), *args])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err


def test_unwritable_output_folder_is_a_one_line_error(tmp_path: Path, run_cli: RunCli) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(["phantom", "--out", str(blocker / "sub"), "--size", "small"])
    assert code == 2
    assert err.count("\n") == 1 and "cannot write to output folder" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder_is_a_one_line_error(tmp_path: Path, run_cli: RunCli) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(["phantom", "--out", str(locked), "--size", "small"])
    finally:
        locked.chmod(0o700)
    assert code == 2 and "cannot write to output folder" in err


def test_interrupted_run_leaves_no_manifest_and_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    (tmp_path / "manifest.csv").write_text("stale manifest from an earlier run\n")
    real = cohort_module.simulate_patient
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> list[dict[str, str]]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cohort_module, "simulate_patient", interrupted)
    code, _, err = run_cli(
        ["phantom", "--out", str(tmp_path), "--patients", "3", "--size", "small", "--workers", "1"],
    )
    assert code == 130 and "interrupted" in err
    assert not (tmp_path / "manifest.csv").exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "P0001" / "L_CC_LE.dcm").is_file()  # finished work is kept


def test_every_command_has_help(run_cli: RunCli) -> None:
    names = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    commands = [[name] for name in names]
    for group in app.registered_groups:
        if group.name and group.typer_instance is not None:
            commands.append([group.name])
            commands += [
                [group.name, c.name or c.callback.__name__]  # type: ignore[union-attr]
                for c in group.typer_instance.registered_commands
            ]
    assert ["phantom"] in commands and ["reader-study", "serve"] in commands
    for command in commands:
        code, out, _ = run_cli([*command, "--help"])
        assert code == 0 and "Usage" in out, command


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("halo_share: high\n", "halo_share must be like"),
        ("compressed_thickness_mm: 50\n", "compressed_thickness_mm must be like"),
        ("no_such_key: 1\n", "unknown phantom config key 'no_such_key'"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_bad_config_files_give_one_line(
    tmp_path: Path, run_cli: RunCli, yaml_text: str, message: str
) -> None:
    config = tmp_path / "phantom.yaml"
    config.write_text(yaml_text)
    code, _, err = run_cli(
        ["phantom", "--out", str(tmp_path / "o"), "--size", "small", "--config", str(config)],
    )
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_config_file_overrides_constants(tmp_path: Path) -> None:
    from cemsynth.phantom.config import load_phantom_config

    config = tmp_path / "phantom.yaml"
    config.write_text("compressed_thickness_mm: [45, 50]\nhalo_share: 0.25\n")
    loaded = load_phantom_config(config)
    assert loaded.compressed_thickness_mm == (45.0, 50.0)
    assert loaded.halo_share == 0.25
    assert load_phantom_config(config, halo_share=1.0).halo_share == 1.0
