"""Which prediction file belongs to which manifest row.

A prediction is a synthetic RC image on the original pixel grid in RC stored units (DICOM,
PNG or TIFF). For each manifest row, the first rule that finds a file wins:

1. ``PRED_DIR/synthetic_manifest.csv`` with columns ``patient_id, laterality, view, path``
   (``path`` relative to ``PRED_DIR``), the format the reader study reads;
2. the same relative path as the row's ``rc_path`` (relative to the manifest's folder), under
   ``PRED_DIR``;
3. a file named ``<patient_id>_<L|R>_<view>`` with suffix ``.dcm``, ``.png``, ``.tif`` or
   ``.tiff`` directly in ``PRED_DIR`` (e.g. ``P0001_L_CC.dcm``).

A row that no rule matches is not an error here: it is skipped by the evaluation with the
reason. A malformed ``synthetic_manifest.csv`` is an error (it names the file and line).
"""

from __future__ import annotations

from pathlib import Path

from cemsynth.inference.outputs import SYNTHETIC_MANIFEST, read_synthetic_manifest
from cemsynth.io.manifest import PairRecord, relative_path_text
from cemsynth.vocabulary import ViewKey

PREDICTION_SUFFIXES = (".dcm", ".png", ".tif", ".tiff")


def _table(pred_dir: Path) -> dict[ViewKey, Path] | None:
    rows = read_synthetic_manifest(pred_dir)
    if rows is None:
        return None
    return {row.key: pred_dir / row.path for row in rows}


class PredictionFinder:
    """Finds the prediction of a manifest row under ``pred_dir`` (rules in the module doc)."""

    def __init__(self, pred_dir: Path, manifest_path: Path) -> None:
        self.pred_dir = Path(pred_dir)
        self.manifest_folder = Path(manifest_path).parent.absolute()
        self.table = _table(self.pred_dir)

    @property
    def rule(self) -> str:
        """The rule in force, for the report."""
        if self.table is not None:
            return f"{SYNTHETIC_MANIFEST} in the prediction folder"
        return "same relative path as rc_path, else <patient>_<L|R>_<view>.<dcm|png|tif|tiff>"

    def find(self, record: PairRecord) -> tuple[Path | None, str]:
        """``(path, how)`` of the prediction, or ``(None, what was looked for)``."""
        key = (record.patient_id, record.laterality, record.view)
        if self.table is not None:
            path = self.table.get(key)
            if path is None:
                return None, f"not listed in {SYNTHETIC_MANIFEST}"
            if not path.is_file():
                return None, f"{SYNTHETIC_MANIFEST} lists {path}, which does not exist"
            return path, SYNTHETIC_MANIFEST
        relative = relative_path_text(record.rc_path, self.manifest_folder)
        if not Path(relative).is_absolute() and not relative.startswith("../"):
            candidate = self.pred_dir / relative
            if candidate.is_file():
                return candidate, "rc_path"
        stem = f"{record.patient_id}_{record.laterality}_{record.view}"
        for suffix in PREDICTION_SUFFIXES:
            candidate = self.pred_dir / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate, "file name"
        return None, (
            f"no prediction found (looked for {self.pred_dir / relative} and "
            f"{self.pred_dir / stem}.dcm/.png/.tif/.tiff)"
        )
