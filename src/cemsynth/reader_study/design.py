"""The blinded reading design: random codes, two sessions per reader, a random order in each.

Pure functions of (breasts, readers, seed); no files. For every reader independently the
patients are split at random into two halves A and B (sizes differ by at most one patient):

* session 1 = the clinical cases of A and the synthetic cases of B,
* session 2 = the synthetic cases of A and the clinical cases of B,

each shuffled. So no session holds both image types of one patient, every breast is read once
per image type by every reader, and across readers each patient is seen clinical-first about
half the time. Codes are opaque and random, so neither the file names nor the order reveal the
image type or the patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cemsynth.reader_study.tables import IMAGE_TYPES, ImageType
from cemsynth.vocabulary import STANDARD_VIEWS

#: Code alphabet without look-alike characters (0/O, 1/I/L).
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 8


@dataclass(frozen=True)
class Case:
    """One thing a reader scores: both views of one breast in one image type."""

    code: str
    patient_id: str
    laterality: str
    image_type: ImageType
    image_codes: dict[str, str]  # view ('CC', 'MLO') -> image code


@dataclass(frozen=True)
class ReaderPlan:
    """A reader's two sessions (case codes in reading order) and the split that made them."""

    reader: str
    sessions: tuple[tuple[str, ...], tuple[str, ...]]
    clinical_first: tuple[str, ...]  # patient ids read clinical in session 1 (key only)


@dataclass(frozen=True)
class Design:
    """All cases (sorted by patient, laterality, image type) and one plan per reader."""

    cases: tuple[Case, ...]
    plans: tuple[ReaderPlan, ...]


def design_study(breasts: Sequence[tuple[str, str]], readers: Sequence[str], seed: int) -> Design:
    """Make the design for ``breasts`` = [(patient_id, laterality), ...] and ``readers``.

    ``seed`` (any non-negative integer) fixes codes, splits and orders: the same arguments
    give the same design. Raises ValueError for an empty or duplicated input.
    """
    if not breasts:
        raise ValueError("no breasts to read")
    if len(set(breasts)) != len(breasts):
        raise ValueError("a breast is listed twice")
    if not readers or len(set(readers)) != len(readers):
        raise ValueError("readers must be a non-empty list of distinct names")
    streams = np.random.SeedSequence(seed).spawn(1 + len(readers))
    code_rng = np.random.default_rng(streams[0])
    used: set[str] = set()

    def new_code() -> str:
        while True:
            picks = code_rng.integers(0, len(_ALPHABET), size=_CODE_LENGTH)
            code = "".join(_ALPHABET[int(i)] for i in picks)
            if code not in used:
                used.add(code)
                return code

    cases: list[Case] = []
    by_patient: dict[str, dict[ImageType, list[str]]] = {}
    for patient, laterality in sorted(breasts):
        for image_type in IMAGE_TYPES:
            case = Case(
                code=new_code(),
                patient_id=patient,
                laterality=laterality,
                image_type=image_type,
                image_codes={view: new_code() for view in STANDARD_VIEWS},
            )
            cases.append(case)
            by_patient.setdefault(patient, {"clinical": [], "synthetic": []})[image_type].append(
                case.code
            )

    patients = sorted(by_patient)
    plans: list[ReaderPlan] = []
    for reader, stream in zip(readers, streams[1:], strict=True):
        rng = np.random.default_rng(stream)
        order = rng.permutation(len(patients))
        half = (len(patients) + 1) // 2
        group_a = sorted(patients[int(i)] for i in order[:half])
        group_b = sorted(patients[int(i)] for i in order[half:])
        first = [c for p in group_a for c in by_patient[p]["clinical"]] + [
            c for p in group_b for c in by_patient[p]["synthetic"]
        ]
        second = [c for p in group_a for c in by_patient[p]["synthetic"]] + [
            c for p in group_b for c in by_patient[p]["clinical"]
        ]
        sessions = (
            tuple(first[int(i)] for i in rng.permutation(len(first))),
            tuple(second[int(i)] for i in rng.permutation(len(second))),
        )
        plans.append(ReaderPlan(reader, sessions, tuple(group_a)))
    return Design(tuple(cases), tuple(plans))
