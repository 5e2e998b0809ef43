"""File-name rules: the CDD-CESM naming of low-energy and recombined images.

Two spellings are recognised (case-insensitive, any image suffix):

- the CDD-CESM release: ``P<n>_<L|R>_<DM|CM>_<view>`` where DM is the low-energy image and CM
  the recombined (contrast) one, e.g. ``P10_L_DM_CC.jpg``;
- the layout of the shared subset: ``P<n>_<L|R>_<view>_<LE|RE>``, e.g. ``le/P10_L_CC_LE.png``
  and ``re/P10_L_CC_RE.png``.

``<view>`` is CC, MLO, ML, LM, XCCL or XCCM. The patient id is ``P<n>``; there is no study UID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cemsynth.index.keywords import Kind

_VIEWS = "CC|MLO|ML|LM|XCCL|XCCM"
_RELEASE = re.compile(rf"^(P\d+)_([LR])_(DM|CM)_({_VIEWS})$", re.IGNORECASE)
_SUBSET = re.compile(rf"^(P\d+)_([LR])_({_VIEWS})_(LE|RE)$", re.IGNORECASE)
_KIND_BY_CODE: dict[str, Kind] = {"DM": "le", "CM": "rc", "LE": "le", "RE": "rc"}


@dataclass(frozen=True)
class NameKeys:
    """What a file name says: kind ("le"/"rc"), patient id, laterality ("L"/"R") and view."""

    kind: Kind
    patient_id: str
    laterality: str
    view: str


def parse_cdd_cesm_name(path: Path) -> NameKeys | None:
    """The keys in a CDD-CESM file name, or None if the name follows neither spelling."""
    stem = Path(path).stem
    match = _RELEASE.match(stem)
    if match is not None:
        patient, side, code, view = match.groups()
    else:
        match = _SUBSET.match(stem)
        if match is None:
            return None
        patient, side, view, code = match.groups()
    return NameKeys(
        kind=_KIND_BY_CODE[code.upper()],
        patient_id=patient.upper(),
        laterality=side.upper(),
        view=view.upper(),
    )
