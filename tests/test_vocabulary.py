"""The field's vocabulary: one spelling of each term, used by every table reader."""

from __future__ import annotations

import pytest

from cemsynth.vocabulary import (
    BPE_GRADES,
    LATERALITIES,
    STANDARD_VIEWS,
    normalize_laterality,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("L", "L"), ("l", "L"), (" Left ", "L"), ("RIGHT", "R"), ("r", "R"), ("", None),
     ("LR", None), ("both", None)],
)  # fmt: skip
def test_laterality_spellings(text: str, expected: str | None) -> None:
    assert normalize_laterality(text) == expected


def test_terms_are_the_dicom_and_birads_ones() -> None:
    assert LATERALITIES == ("L", "R")
    assert STANDARD_VIEWS == ("CC", "MLO")
    assert BPE_GRADES == ("a", "b", "c", "d")
