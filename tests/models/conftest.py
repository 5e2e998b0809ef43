"""One torch thread for the network tests (see tests/training/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _every_test_one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (tests/conftest.py)."""
