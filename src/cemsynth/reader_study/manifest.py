"""The study's inputs: which breasts there are, their truth, and the two images of each view.

A *breast* is one ``(patient_id, laterality)`` with exactly one CC and one MLO view. Its truth
comes from the manifest: ``lesion`` is 1 when either view has ``lesion_present`` 1, and ``bpe``
is the breast's BI-RADS BPE category (both views must agree).

Clinical images are the manifest's ``rc_path`` files: the path relative to the manifest's
folder, resolved against the clinical folder (by default that same folder).
Synthetic images are matched in one of two ways (documented in ``docs/reader-study.md``):

1. ``SYNTHETIC_DIR/synthetic_manifest.csv`` with columns ``patient_id, laterality, view, path``
   (``path`` relative to ``SYNTHETIC_DIR``), when that file exists;
2. otherwise the same relative path as ``rc_path``, under ``SYNTHETIC_DIR``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from cemsynth.errors import InputFileError
from cemsynth.inference.outputs import SYNTHETIC_MANIFEST, read_synthetic_manifest
from cemsynth.io.manifest import csv_header, read_manifest
from cemsynth.vocabulary import STANDARD_VIEWS, ViewKey

#: Manifest columns the study needs besides the manifest's own required ones.
TRUTH_COLUMNS = ("lesion_present", "bpe_grade")


@dataclass(frozen=True)
class Breast:
    """One case of the study: a breast with its truth and its clinical and synthetic images.

    ``clinical`` and ``synthetic`` map the view ('CC', 'MLO') to a DICOM file path.
    ``lesion`` is 0 or 1; ``bpe`` is 'a'..'d'.
    """

    patient_id: str
    laterality: str
    study_uid: str
    lesion: int
    bpe: str
    clinical: dict[str, Path]
    synthetic: dict[str, Path]


def load_breasts(manifest: Path, clinical_dir: Path, synthetic_dir: Path) -> list[Breast]:
    """Read the manifest, match every view to its synthetic image, check that files exist.

    The manifest is read by :func:`cemsynth.io.manifest.read_manifest` (the project's one
    manifest format); its ``lesion_present`` and ``bpe_grade`` columns must be filled in.
    Returns the breasts sorted by (patient_id, laterality). Raises InputFileError on the first
    problem, before anything is written.
    """
    if not clinical_dir.is_dir():
        raise InputFileError(clinical_dir, "clinical folder not found")
    if not synthetic_dir.is_dir():
        raise InputFileError(synthetic_dir, "synthetic folder not found")
    records = read_manifest(manifest)
    missing_columns = [c for c in TRUTH_COLUMNS if c not in csv_header(manifest)]
    if missing_columns:
        raise InputFileError(
            manifest, f"missing column(s) {', '.join(missing_columns)}; the reader study needs them"
        )
    folder = manifest.parent.absolute()
    views: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    lesions: dict[tuple[str, str], list[int]] = defaultdict(list)
    grades: dict[tuple[str, str], set[str]] = defaultdict(set)
    studies: dict[tuple[str, str], str] = {}
    for record in records:
        name = f"{record.patient_id} {record.laterality} {record.view}"
        if record.view not in STANDARD_VIEWS:
            raise InputFileError(
                manifest, f"{name}: view {record.view!r} is not CC or MLO (the views read)"
            )
        if record.lesion_present is None or record.bpe_grade is None:
            raise InputFileError(
                manifest, f"{name}: lesion_present and bpe_grade must be filled in"
            )
        try:
            relative = record.rc_path.relative_to(folder).as_posix()
        except ValueError:
            relative = str(record.rc_path)  # an absolute path outside the manifest folder
        key = (record.patient_id, record.laterality)
        if record.view in views[key]:
            raise InputFileError(
                manifest, f"{name} is listed twice; a case needs exactly one CC and one MLO image"
            )
        _existing(clinical_dir / relative, manifest, name, "clinical")
        views[key][record.view] = relative
        lesions[key].append(int(record.lesion_present))
        grades[key].add(record.bpe_grade)
        studies.setdefault(key, record.study_uid)

    synthetic_paths = _synthetic_paths(synthetic_dir, views)
    breasts: list[Breast] = []
    for key in sorted(views):
        patient, laterality = key
        missing = [view for view in STANDARD_VIEWS if view not in views[key]]
        if missing:
            raise InputFileError(
                manifest, f"{patient} {laterality} has no {' or '.join(missing)} view"
            )
        if len(grades[key]) > 1:
            raise InputFileError(
                manifest,
                f"{patient} {laterality}: the views disagree on bpe_grade "
                f"({', '.join(sorted(grades[key]))})",
            )
        breasts.append(
            Breast(
                patient_id=patient,
                laterality=laterality,
                study_uid=studies[key],
                lesion=max(lesions[key]),
                bpe=next(iter(grades[key])),
                clinical={view: clinical_dir / views[key][view] for view in STANDARD_VIEWS},
                synthetic={
                    view: synthetic_paths[(patient, laterality, view)] for view in STANDARD_VIEWS
                },
            )
        )
    return breasts


def _existing(path: Path, table: Path, where: str, kind: str) -> Path:
    if not path.is_file():
        raise InputFileError(path, f"{kind} image not found ({table.name}: {where})")
    return path


def _synthetic_paths(
    synthetic_dir: Path, views: dict[tuple[str, str], dict[str, str]]
) -> dict[ViewKey, Path]:
    """Map every manifest view to its synthetic DICOM (see the module docstring)."""
    table = synthetic_dir / SYNTHETIC_MANIFEST
    found: dict[ViewKey, Path] = {}
    rows = read_synthetic_manifest(synthetic_dir)
    if rows is not None:
        for row in rows:
            found[row.key] = _existing(
                synthetic_dir / row.path, table, " ".join(row.key), "synthetic"
            )
        for (patient, laterality), by_view in views.items():
            for view in by_view:
                if (patient, laterality, view) not in found:
                    raise InputFileError(
                        table, f"no synthetic image for {patient} {laterality} {view}"
                    )
        return found
    for (patient, laterality), by_view in views.items():
        for view, relative in by_view.items():
            path = synthetic_dir / relative
            if Path(relative).is_absolute() or not path.is_file():
                raise InputFileError(
                    path,
                    f"synthetic image not found for {patient} {laterality} {view}; put it at "
                    f"the rc_path under the synthetic folder or list it in {SYNTHETIC_MANIFEST}",
                )
            found[(patient, laterality, view)] = path
    return found
