"""The shared DICOM building blocks: a complete MG file, deterministic UIDs, type 2 filling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from cemsynth.io.dicom_build import (
    MG_FOR_PRESENTATION,
    PATIENT_STUDY_TYPE2,
    code_item,
    fill_missing_type2,
    hashed_uid,
    implementation_version_name,
    new_mg_dataset,
    set_identity_presentation,
    set_mono16_pixels,
    set_patient_study,
    write_dataset,
)


def test_hashed_uid_is_a_pure_function_in_the_2_25_form() -> None:
    uid = hashed_uid("space", "a", 1)
    assert uid == hashed_uid("space", "a", 1)
    assert uid != hashed_uid("other", "a", 1) and uid != hashed_uid("space", "a", 2)
    assert uid.startswith("2.25.") and len(uid) <= 64 and int(uid[5:]) < 2**128
    assert implementation_version_name("1.2.3.dev45+gabcdef") == "CEMSYNTH_1.2.3.d"


def test_a_written_dataset_reads_back_with_its_pixels(tmp_path: Path) -> None:
    pixels = (np.arange(12, dtype=np.uint16) * 1000).reshape(3, 4)
    ds = new_mg_dataset("1.2.3.4", implementation_version="CEMSYNTH_TEST")
    set_patient_study(ds, study_uid="1.2.3", patient_id="P1", patient_name="CASE^1")
    set_mono16_pixels(ds, pixels, bits_stored=14)
    set_identity_presentation(
        ds, relationship="LIN", window_center=2000.0, window_width=3000.25, decimals=1
    )
    ds.AnatomicRegionSequence = [code_item("76752008", "SCT", "Breast")]
    path = tmp_path / "sub" / "image.dcm"
    write_dataset(path, ds)

    back = pydicom.dcmread(path)
    assert back.file_meta.MediaStorageSOPClassUID == MG_FOR_PRESENTATION == back.SOPClassUID
    assert back.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4" == back.SOPInstanceUID
    assert back.file_meta.ImplementationVersionName == "CEMSYNTH_TEST"
    assert (back.Modality, back.PresentationIntentType) == ("MG", "FOR PRESENTATION")
    assert (back.Rows, back.Columns, back.BitsStored, back.HighBit) == (3, 4, 14, 13)
    np.testing.assert_array_equal(back.pixel_array, pixels)
    assert (back.WindowCenter, back.WindowWidth) == (2000.0, 3000.2)  # one decimal, as text
    assert back.PatientBirthDate == "" and back.StudyDate == ""
    assert back.AnatomicRegionSequence[0].CodeMeaning == "Breast"
    assert not list(tmp_path.glob("sub/.*"))  # no temporary file left


def test_fill_missing_type2_keeps_present_values() -> None:
    ds = new_mg_dataset("1.2")
    ds.PatientID = "P7"
    fill_missing_type2(ds)
    assert all(keyword in ds for keyword in PATIENT_STUDY_TYPE2)
    assert ds.PatientID == "P7" and ds.PatientName == ""
