"""PNG / TIFF / JPEG reading and the format dispatcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

from cemsynth.errors import ConfigError, InputFileError
from cemsynth.io.reader import detect_format, read_image, read_image_meta

GRAY8 = np.array([[0, 10, 20], [30, 40, 255]], dtype=np.uint8)
GRAY16 = np.array([[0, 1000, 4095], [40000, 65535, 7]], dtype=np.uint16)


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    PILImage.fromarray(array, mode=mode).save(path) if mode else PILImage.fromarray(array).save(
        path
    )
    return path


def test_png_8bit_exact(tmp_path: Path) -> None:
    image = read_image(_png(tmp_path / "a.png", GRAY8))
    assert image.array.dtype == np.float32
    np.testing.assert_array_equal(image.array, GRAY8)
    assert image.meta.bits_stored == 8
    assert image.meta.extra["format"] == "PNG"
    assert (image.meta.pixel_spacing_mm, image.meta.spacing_source) == (
        (0.1, 0.1),
        "fallback-0.1mm",
    )


def test_png_16bit_exact_with_user_spacing(tmp_path: Path) -> None:
    path = tmp_path / "b.png"
    PILImage.fromarray(GRAY16).save(path)
    image = read_image(path, pixel_spacing_mm=(0.07, 0.07))
    np.testing.assert_array_equal(image.array, GRAY16.astype(np.float32))
    assert image.meta.bits_stored == 16
    assert (image.meta.pixel_spacing_mm, image.meta.spacing_source) == ((0.07, 0.07), "user")


def test_tiff_16bit_and_float(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "c.tif", GRAY16)
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif").array, GRAY16)
    floats = np.array([[0.5, -1.25], [3.0, 2.0]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tiff", floats)
    image = read_image(tmp_path / "f.tiff")
    np.testing.assert_array_equal(image.array, floats)
    assert image.meta.bits_stored is None


def test_tiff_miniswhite_is_inverted(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "w.tif", GRAY8, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "w.tif").array, 255 - GRAY8.astype(int))


def test_jpeg_gray(tmp_path: Path) -> None:
    smooth = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (16, 1))
    PILImage.fromarray(smooth).save(tmp_path / "d.jpg", quality=95)
    image = read_image(tmp_path / "d.jpg")
    assert image.shape == (16, 32)
    assert np.abs(image.array - smooth).max() <= 8  # lossy, but close


def test_rgb_with_equal_channels_is_gray(tmp_path: Path) -> None:
    rgb = np.repeat(GRAY8[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_image(_png(tmp_path / "e.png", rgb)).array, GRAY8)
    rgba = np.concatenate([rgb, np.full((*GRAY8.shape, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(read_image(_png(tmp_path / "f.png", rgba)).array, GRAY8)


def test_true_colour_and_transparency_are_rejected(tmp_path: Path) -> None:
    rgb = np.repeat(GRAY8[..., None], 3, axis=2)
    rgb[0, 0, 1] = 99
    path = _png(tmp_path / "colour.png", rgb)
    with pytest.raises(InputFileError, match="true colour"):
        read_image(path)
    rgba = np.concatenate(
        [np.repeat(GRAY8[..., None], 3, 2), np.zeros((*GRAY8.shape, 1), np.uint8)], 2
    )
    with pytest.raises(InputFileError, match="transparency"):
        read_image(_png(tmp_path / "alpha.png", rgba))


def test_multipage_tiff_is_not_2d(tmp_path: Path) -> None:
    page = np.arange(20, dtype=np.uint16).reshape(4, 5)
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([page, page]))
    with pytest.raises(InputFileError, match="not a 2-D image"):
        read_image(tmp_path / "stack.tif")


def test_blank_png_is_rejected(tmp_path: Path) -> None:
    path = _png(tmp_path / "blank.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    assert str(exc.value) == f"{path}: blank image: every pixel is 0"


def test_blank_png_is_a_valid_mask(tmp_path: Path) -> None:
    path = _png(tmp_path / "no_lesion.png", np.zeros((5, 5), np.uint8))
    np.testing.assert_array_equal(read_image(path, mask=True).array, np.zeros((5, 5)))


def test_raster_reader_reports_like_the_dispatcher(tmp_path: Path, make_dicom) -> None:
    """One format check for all readers: the raster reader gives the same messages."""
    from cemsynth.io.raster import read_raster, read_raster_meta

    for read in (read_raster, read_raster_meta):
        with pytest.raises(InputFileError) as exc:
            read(tmp_path / "missing.png")
        assert str(exc.value) == f"{tmp_path / 'missing.png'}: file not found"
        with pytest.raises(InputFileError, match="not a PNG, TIFF or JPEG image"):
            read(make_dicom(tmp_path / "a.dcm", GRAY16))


def test_corrupt_png_is_rejected(tmp_path: Path) -> None:
    good = _png(tmp_path / "good.png", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputFileError) as exc:
        read_image(bad)
    assert str(exc.value).startswith(f"{bad}: corrupt or unreadable image")
    assert "\n" not in str(exc.value)


def test_bad_user_spacing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive"):
        read_image(_png(tmp_path / "a.png", GRAY8), pixel_spacing_mm=(-0.1, 0.1))


def test_format_comes_from_bytes_not_suffix(tmp_path: Path, make_dicom) -> None:
    disguised = tmp_path / "really_png.jpg"
    PILImage.fromarray(GRAY8).save(disguised, format="PNG")
    assert detect_format(disguised) == "png"
    np.testing.assert_array_equal(read_image(disguised).array, GRAY8)
    dicom = make_dicom(tmp_path / "IM0001", GRAY16)
    assert detect_format(dicom) == "dicom"
    assert read_image(dicom).meta.modality == "MG"


def test_unknown_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputFileError, match="not an image file we read"):
        read_image(text)
    with pytest.raises(InputFileError, match="file not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(InputFileError, match="folder"):
        read_image_meta(tmp_path)


def test_header_only_meta(tmp_path: Path) -> None:
    meta = read_image_meta(_png(tmp_path / "a.png", GRAY8), pixel_spacing_mm=(0.2, 0.2))
    assert (meta.bits_stored, meta.pixel_spacing_mm, meta.spacing_source) == (8, (0.2, 0.2), "user")


def test_cdd_cesm_subset_png(cdd_cesm_subset: Path) -> None:
    image = read_image(cdd_cesm_subset / "le" / "P10_L_CC_LE.png")
    assert image.shape == (512, 256)  # 256 wide x 512 high, per the subset's README
    assert image.meta.bits_stored == 8
    assert 0.0 <= float(image.array.min()) < float(image.array.max()) <= 255.0
