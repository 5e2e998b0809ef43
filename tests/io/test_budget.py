"""The resource budget: sizes and spacings checked from the header, before decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage

from cemsynth.errors import ConfigError, InputFileError
from cemsynth.io.budget import (
    DEFAULT_MAX_IMAGE_PIXELS,
    MAX_PIXELS_VARIABLE,
    check_image_size,
    max_image_pixels,
)
from cemsynth.io.reader import read_image, read_image_meta

PIXELS = np.arange(12, dtype=np.uint16).reshape(3, 4)


def test_budget_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_PIXELS_VARIABLE, raising=False)
    assert max_image_pixels() == DEFAULT_MAX_IMAGE_PIXELS == 64_000_000
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "1000")
    assert max_image_pixels() == 1000
    check_image_size("a.dcm", 10, 100)  # exactly the budget fits
    with pytest.raises(InputFileError, match=r"declares 10 x 101 pixels, more than the budget"):
        check_image_size("a.dcm", 10, 101)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "lots")
    with pytest.raises(ConfigError, match="must be a positive integer"):
        max_image_pixels()


def test_dicom_declaring_a_huge_image_is_refused_before_decoding(
    tmp_path: Path, make_dicom
) -> None:
    """Rows x Columns in the header say 20000 x 20000 (3.2 GB as float32); the file holds 24
    bytes of pixels. Refused from the header, by the header reader and the full reader."""
    path = make_dicom(tmp_path / "bomb.dcm", PIXELS, bits_stored=12)
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 20000, 20000
    ds.save_as(path)
    for read in (read_image_meta, read_image):
        with pytest.raises(InputFileError) as caught:
            read(path)
        assert "declares 20000 x 20000 pixels, more than the budget" in str(caught.value)


@pytest.mark.parametrize("spacing", [[40.0, 40.0], [1e-9, 1e-9], [4.0, 4.0]])
def test_implausible_spacing_is_refused(tmp_path: Path, make_dicom, spacing: list[float]) -> None:
    path = make_dicom(tmp_path / "odd.dcm", PIXELS, bits_stored=12, PixelSpacing=spacing)
    with pytest.raises(InputFileError, match="not a plausible mammogram pixel spacing"):
        read_image_meta(path)


def test_png_and_tiff_over_the_budget_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tifffile

    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "5000")
    png = tmp_path / "big.png"
    PILImage.fromarray(np.zeros((80, 80), dtype=np.uint8)).save(png)
    tiff = tmp_path / "big.tif"
    tifffile.imwrite(tiff, np.zeros((80, 80), dtype=np.uint16))
    for path in (png, tiff):
        for read in (read_image_meta, read_image):
            with pytest.raises(InputFileError, match="than the budget of 5,000"):
                read(path)
    monkeypatch.setenv(MAX_PIXELS_VARIABLE, "6400")
    assert read_image(png, (0.1, 0.1), mask=True).shape == (80, 80)
