"""``scores.csv``: the readers' answers joined with the sealed key (admin only).

The first six columns are what ``reader-study stats`` needs; the rest keep everything the
reader gave (confidence 1-5, artifact flags, comment, lesion marks as JSON in image pixels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cemsynth.io.tables import csv_text
from cemsynth.reader_study.store import Answer
from cemsynth.reader_study.study import KeyEntry

SCORES_HEADER = (
    "reader",
    "patient_id",
    "laterality",
    "image_type",
    "bpe",
    "lesion",
    "confidence",
    "artifact_halo",
    "artifact_hallucination",
    "artifact_other",
    "comment",
    "lesion_marks",
    "session",
    "position",
    "case_code",
    "answered_at",
)

# Spreadsheet programs run cells that start with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def scores_csv(answers: Sequence[Answer], key: dict[str, KeyEntry]) -> str:
    """The CSV text of ``scores.csv`` for ``answers``."""
    rows = []
    for answer in answers:
        entry = key[answer.case_code]
        rows.append(
            [
                answer.reader,
                entry.patient_id,
                entry.laterality,
                entry.image_type,
                answer.bpe,
                answer.lesion,
                answer.confidence,
                answer.artifact_halo,
                answer.artifact_hallucination,
                answer.artifact_other,
                _safe_text(answer.comment),
                json.dumps(answer.marks, separators=(",", ":")),
                answer.session,
                answer.position,
                answer.case_code,
                answer.answered_at,
            ]
        )
    return csv_text(SCORES_HEADER, rows)
