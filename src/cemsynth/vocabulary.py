"""The field's vocabulary and the method's fixed numbers, in one module every layer may import.

Mammography names a breast by its laterality and an image by its view; BI-RADS grades breast
density and background parenchymal enhancement (BPE) with the letters a-d; the paper trains on
and synthesizes with square windows of one size, and shows LE and recombined images in fixed
intensity windows. Everything else that speaks of these imports them from here, so a change is
made once. This module imports nothing from cemsynth.
"""

from __future__ import annotations

from typing import Final, Literal

Laterality = Literal["L", "R"]
LATERALITIES: Final[tuple[Laterality, ...]] = ("L", "R")
"""DICOM ImageLaterality values: left and right breast."""

LATERALITY_SPELLINGS: Final = {"l": "L", "left": "L", "r": "R", "right": "R"}
"""Lower-cased spellings that tables written by people use, mapped to DICOM's letters."""

View = Literal["CC", "MLO"]
STANDARD_VIEWS: Final[tuple[View, ...]] = ("CC", "MLO")
"""The two screening views every CEM exam has: cranio-caudal and medio-lateral oblique."""

BpeGrade = Literal["a", "b", "c", "d"]
BPE_GRADES: Final[tuple[BpeGrade, ...]] = ("a", "b", "c", "d")
"""BI-RADS background parenchymal enhancement: minimal, mild, moderate, marked (ordinal)."""

DENSITY_GRADES: Final = ("a", "b", "c", "d")
"""BI-RADS breast density: fatty, scattered, heterogeneously dense, extremely dense."""

ViewKey = tuple[str, str, str]
"""(patient_id, laterality, view): names one image of an exam across LE, RC and synthetic."""

PATCH_SIZE: Final = 128
"""Edge of the paper's training patches and synthesis windows (pixels at training spacing)."""

LE_DISPLAY_WINDOW: Final = (1800.0, 2900.0)
"""(low, high) stored LE values the paper maps to [-1, 1]; also how viewers open LE images."""

RC_DISPLAY_WINDOW: Final = (1700.0, 2400.0)
"""(low, high) stored recombined values the paper maps to [-1, 1]."""


def normalize_laterality(text: str) -> Laterality | None:
    """``"L"``/``"R"`` for any spelling in :data:`LATERALITY_SPELLINGS` (case-insensitive,
    surrounding spaces ignored); None for anything else."""
    value = LATERALITY_SPELLINGS.get(text.strip().lower())
    return "L" if value == "L" else "R" if value == "R" else None
