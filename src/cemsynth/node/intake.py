"""What the node does with one arriving file: queue it, ignore it, or quarantine it.

The same rules for both ways in (a C-STORE to ``serve-dicom``, a file in ``watch``'s folder):

- an image the index's vendor keywords call **low-energy** (the rules of ``cemsynth index``,
  :func:`cemsynth.index.keywords.classify`; replaceable with ``--vendor-keywords``) whose
  pixels decode is **queued**, once per SOP Instance UID;
- any other readable DICOM image (recombined, high-energy, a synthetic image, an image of
  unknown kind) is **ignored**: acknowledged and logged, not queued;
- data that is not a usable image (a corrupt dataset, no pixel data, pixels that do not
  decode, an LE image without a SOP Instance UID) is **quarantined** with a one-line reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cemsynth.errors import InputFileError
from cemsynth.index.keywords import KIND_NAMES, KeywordRules, classify, default_keywords, words
from cemsynth.inference.predictor import SYNTHETIC_WORD
from cemsynth.node.queue import Job, NodeQueue, job_key

Outcome = Literal["queued", "duplicate", "ignored", "quarantined"]

#: The header elements that decide what an arriving file is.
CLASSIFYING_KEYWORDS = (
    "SOPInstanceUID",
    "SOPClassUID",
    "ImageType",
    "SeriesDescription",
    "Manufacturer",
)

#: The status counter (:mod:`cemsynth.node.status`) each outcome adds to.
OUTCOME_COUNTERS: dict[Outcome, str] = {
    "queued": "received",
    "duplicate": "duplicates",
    "ignored": "ignored",
    "quarantined": "quarantined",
}


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one arriving file, with a one-line reason."""

    outcome: Outcome
    message: str
    job: Job | None = None

    @property
    def counter(self) -> str:
        return OUTCOME_COUNTERS[self.outcome]


@dataclass
class Intake:
    """Sorts arriving files into the queue (thread-safe: the queue serialises admissions)."""

    queue: NodeQueue
    keywords: KeywordRules = field(default_factory=default_keywords)

    def take(self, received: Path, origin: str, name: str) -> IntakeResult:
        """Sort ``received`` (a complete DICOM file inside the queue's ``receiving`` folder).

        ``origin``: where it came from (calling AE title and address, or the watched path);
        ``name``: how to name it in messages. The file is moved into the queue or the
        quarantine, or removed. The kind is read from the header first, so that the other
        objects of an exam (dose reports, tomosynthesis stacks) are ignored, not quarantined;
        only an LE image is then checked as a mammogram and decoded.
        """
        from cemsynth.io.dicom import read_dicom_tags
        from cemsynth.io.reader import read_image

        try:
            tags = read_dicom_tags(received, CLASSIFYING_KEYWORDS)
        except InputFileError as exc:
            return self._quarantine(received, f"{name}: {exc.problem}")
        description = tags.get("SeriesDescription")
        if description is not None and SYNTHETIC_WORD in words(description):
            received.unlink(missing_ok=True)
            return IntakeResult("ignored", f"{name}: a synthetic image; not queued")
        found = classify(
            tags.get("ImageType"), description, tags.get("Manufacturer"), self.keywords
        )
        if found.kind != "le":
            received.unlink(missing_ok=True)
            kind = f"a {KIND_NAMES[found.kind]}" if found.kind is not None else "not a low-energy"
            sop_class = _sop_class_name(tags.get("SOPClassUID"))
            return IntakeResult(
                "ignored", f"{name}: {kind} image ({found.reason}; {sop_class}); not queued"
            )
        if not tags.get("SOPInstanceUID"):
            return self._quarantine(received, f"{name}: an LE image without SOP Instance UID")
        try:
            image = read_image(received)  # a mammogram whose pixels decode: tell the sender now
        except InputFileError as exc:
            return self._quarantine(received, f"{name}: {exc.problem}")
        meta = image.meta
        job = Job(
            key=job_key(tags["SOPInstanceUID"]),
            sop_instance_uid=tags["SOPInstanceUID"],
            received_at=time.time(),
            origin=origin,
            patient_id=meta.patient_id or "",
            study_instance_uid=meta.study_uid or "",
            laterality=meta.laterality or "",
            view=meta.view or "",
        )
        state = self.queue.admit(received, job)
        if state is not None:
            return IntakeResult("duplicate", f"{name}: LE image {job.label()} already {state}", job)
        return IntakeResult("queued", f"{name}: LE image {job.label()} queued", job)

    def _quarantine(self, received: Path, reason: str) -> IntakeResult:
        kept = self.queue.quarantine(received, reason)
        return IntakeResult("quarantined", f"{reason} (kept as {kept.name})")


def _sop_class_name(uid: str | None) -> str:
    """ "Digital Mammography X-Ray Image Storage - For Presentation", or the UID itself."""
    if not uid:
        return "no SOP class"
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else f"SOP class {uid}"
