"""Intensity window: hand-computed values for the paper's LE and RC windows."""

from __future__ import annotations

import numpy as np
import pytest

from cemsynth.preprocess.intensity import WindowRecord, unwindow, window


def test_le_window_hand_values() -> None:
    stored = np.array([1800.0, 2900.0, 2350.0, 2075.0, 1000.0, 5000.0], dtype=np.float32)
    scaled, record = window(stored, 1800.0, 2900.0)
    assert scaled.dtype == np.float32
    assert record == WindowRecord(1800.0, 2900.0)
    np.testing.assert_allclose(scaled, [-1.0, 1.0, 0.0, -0.5, -1.0, 1.0], atol=1e-6)


def test_rc_window_hand_values_and_inverse() -> None:
    stored = np.array([[1700.0, 2400.0], [2050.0, 1600.0]], dtype=np.float32)
    scaled, record = window(stored, 1700.0, 2400.0)
    np.testing.assert_allclose(scaled, [[-1.0, 1.0], [0.0, -1.0]], atol=1e-6)
    # clipped values come back at the window edge
    np.testing.assert_allclose(unwindow(scaled, record), [[1700.0, 2400.0], [2050.0, 1700.0]])


def test_unwindow_clips_outside_unit_range() -> None:
    record = WindowRecord(0.0, 255.0)
    out = unwindow(np.array([-3.0, 0.0, 7.0], dtype=np.float32), record)
    np.testing.assert_allclose(out, [0.0, 127.5, 255.0])


def test_window_does_not_modify_input() -> None:
    stored = np.array([3000.0], dtype=np.float32)
    window(stored, 1800.0, 2900.0)
    assert stored[0] == 3000.0


def test_empty_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="low < high"):
        window(np.zeros(2, dtype=np.float32), 5.0, 5.0)
