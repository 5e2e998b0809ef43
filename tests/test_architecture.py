"""The import layers of pyproject.toml hold, and a backward import breaks them.

``lint-imports`` (import-linter) runs the contract; ``make lint`` and CI run it too. The second
test proves the contract can fail: the same check on a copy of the package with one backward
import (the ground floor, io, importing training) must refuse it and name the import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.is_file(), reason="import-linter is not installed (pip install -e '.[dev]')"
)


def run_lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_layers() -> None:
    result = run_lint_imports(REPO, REPO / "src")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def test_a_backward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "cemsynth", tmp_path / "cemsynth")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    manifest = tmp_path / "cemsynth" / "io" / "manifest.py"
    manifest.write_text(
        manifest.read_text() + "\nfrom cemsynth.training import config as _backward  # noqa\n"
    )
    result = run_lint_imports(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "cemsynth.io is not allowed to import cemsynth.training" in result.stdout
    assert "cemsynth.io.manifest -> cemsynth.training.config" in result.stdout


def test_the_command_line_loads_without_torch() -> None:
    """``cemsynth --help`` (and every config it reads for its help texts) must not import
    torch: it takes seconds, and the demo sets OpenMP's wait policy before torch loads."""
    code = "import sys, cemsynth.cli; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
