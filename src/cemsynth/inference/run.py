"""``cemsynth predict``: LE files, folders or manifests in; synthetic RC files and a manifest out.

Inputs, in the order given:

- a **file**: one LE image (DICOM, PNG, TIFF, JPEG);
- a **folder**: every image file under it (recursively, sorted). DICOM images whose tags say
  they are recombined, high-energy or synthetic are skipped (an exam folder holds them beside
  the LE images) and counted;
- a **manifest** (``.csv``, from ``cemsynth index`` or the phantom): each row's ``le_path``,
  with the row's patient, laterality and view (and ``pixel_spacing_mm``, if set).

A file that cannot be used (not an image, not an LE image, preprocessing that does not fit,
an output that cannot be written) is reported as one line naming it; the others go on. The
exit code is 0 when every file worked and 1 otherwise (``--strict``: stop at the first).

Nothing a user had is ever written over. Before any inference the run is refused (one line,
exit 2) when an input lies inside the output folder, or when an output would replace a file
that ``predict`` did not write (its label says so, see :func:`~cemsynth.inference.outputs.
made_by_predict`); ``overwrite=True`` (``--overwrite``) allows the second, never the first.

``OUT/provenance.json`` (:mod:`cemsynth.inference.provenance`) records the checkpoint, the
preprocessing and the inference settings; it is written before the first image. A folder
whose provenance names other settings, or that holds predictions without one, is refused
(one line, exit 2, whatever ``--overwrite`` says): a folder holds one run's kind of images.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from cemsynth.batch import BatchReport
from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.imaging import ImageMeta
from cemsynth.inference.config import check_output_format
from cemsynth.inference.outputs import (
    ManifestRow,
    made_by_predict,
    output_name,
    write_png16,
    write_synthetic_manifest,
    write_tiff16,
)
from cemsynth.inference.predictor import Prediction, Predictor
from cemsynth.inference.provenance import Provenance, check_folder, write_provenance
from cemsynth.io.messages import internal_error
from cemsynth.io.paths import ensure_writable_dir
from cemsynth.progress import progress_bar
from cemsynth.vocabulary import ViewKey

MANIFEST_SUFFIX = ".csv"


@dataclass(frozen=True)
class InputItem:
    """One LE image to predict, with what the input said about it.

    ``patient_id``/``laterality``/``view``: from the manifest row (None: take the image's
    tags). ``pixel_spacing_mm``: the manifest's spacing override for files without one.
    """

    path: Path
    patient_id: str | None = None
    laterality: str | None = None
    view: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    from_folder: bool = False


@dataclass
class PredictSummary:
    """What a run did."""

    outputs: list[Path] = field(default_factory=list)
    manifest_path: Path | None = None
    n_skipped: int = 0
    n_unlisted: int = 0
    seconds: float = 0.0


def expand_inputs(inputs: Sequence[Path], report: BatchReport) -> list[InputItem]:
    """Files, folders and manifests -> one :class:`InputItem` per LE image.

    A missing path or an unreadable manifest is recorded in ``report`` (it raises if strict).
    """
    from cemsynth.index.indexer import find_image_files
    from cemsynth.io.manifest import read_manifest

    items: list[InputItem] = []
    for raw in inputs:
        path = Path(raw)
        try:
            if path.is_dir():
                found, _ = find_image_files(path)
                items.extend(InputItem(f.path, from_folder=True) for f in found)
            elif path.suffix.lower() == MANIFEST_SUFFIX and path.is_file():
                for record in read_manifest(path):
                    items.append(
                        InputItem(
                            record.le_path,
                            patient_id=record.patient_id,
                            laterality=record.laterality,
                            view=record.view,
                            pixel_spacing_mm=record.pixel_spacing_mm,
                        )
                    )
            elif path.exists():
                items.append(InputItem(path))
            else:
                raise InputFileError(path, "not found")
        except InputFileError as exc:
            report.add_error(exc)
    return items


def is_skippable(item: InputItem) -> bool:
    """A DICOM file found in a folder whose tags say it is not an LE image."""
    if not item.from_folder:
        return False
    from cemsynth.inference.predictor import check_low_energy
    from cemsynth.io.reader import detect_format, read_image_meta

    try:
        if detect_format(item.path) != "dicom":
            return False
        meta = read_image_meta(item.path)
    except InputFileError:
        return False  # reported when it is read for real
    try:
        check_low_energy(meta)
    except InputFileError:
        return True
    return False


def unique_name(name: str, used: set[str]) -> str:
    """``name``, or ``stem_2.suffix``, ``stem_3.suffix``, ... if this run already wrote it."""
    if name not in used:
        return name
    path = Path(name)
    number = 2
    while f"{path.stem}_{number}{path.suffix}" in used:
        number += 1
    return f"{path.stem}_{number}{path.suffix}"


@dataclass(frozen=True)
class PlannedOutput:
    """An input and the file it will be written to (None: a non-LE image, skipped)."""

    item: InputItem
    target: Path | None


def _planned_key(item: InputItem) -> ViewKey | None:
    """The view key from the manifest row, else from the header (None when unknown/unreadable:
    the file is read for real later and any problem is reported then)."""
    if item.patient_id and item.laterality and item.view:
        return (item.patient_id, item.laterality, item.view.upper())
    from cemsynth.io.reader import read_image_meta

    try:
        meta = read_image_meta(item.path, item.pixel_spacing_mm)
    except InputFileError:
        return None
    return view_key(item, meta)


def plan_outputs(
    items: Sequence[InputItem], out: Path, output_format: str, overwrite: bool
) -> list[PlannedOutput]:
    """Name every output before any inference, and refuse a run that could lose data.

    Raises :class:`CemsynthError` (one line) when an input lies inside ``out`` (outputs would
    land beside or over inputs), or, unless ``overwrite``, when a planned output would replace
    an existing file that ``predict`` did not write.
    """
    # realpath, not Path.resolve: it does not raise on a symlink loop (reported when read)
    root = Path(os.path.realpath(out))
    for item in items:
        source = Path(os.path.realpath(item.path))
        if source == root or root in source.parents:
            raise CemsynthError(
                f"{item.path}: this input lies inside the output folder {out}; predict does "
                "not write where its inputs are: choose another --out"
            )
    plan: list[PlannedOutput] = []
    used: set[str] = set()
    foreign: list[Path] = []
    for item in items:
        if is_skippable(item):
            plan.append(PlannedOutput(item, None))
            continue
        key = _planned_key(item)
        name = output_name(key, item.path, output_format)
        if key is None:  # named after the file: two inputs may share a stem
            name = unique_name(name, used)
        # a second input of the same view is refused when it is read, so its name may repeat
        used.add(name)
        target = out / name
        # a folder in the way is no file to lose: its write fails alone, later
        present = (target.is_symlink() or target.exists()) and not target.is_dir()
        if present and not made_by_predict(target):
            foreign.append(target)
        plan.append(PlannedOutput(item, target))
    if foreign and not overwrite:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise CemsynthError(
            f"{foreign[0]}: exists and was not written by cemsynth predict{more}; nothing was "
            "written: choose another --out, or pass --overwrite to replace such files"
        )
    return plan


def settings_text(predictor: Predictor) -> str:
    """The inference settings in words (for the DICOM labels and the log)."""
    model = predictor.model
    where = f"{model.backend} {model.precision} on {model.device.type}"
    if predictor.preview:
        return f"single-pass preview, not the sliding window; {where}"
    window = predictor.window
    return (
        f"dense sliding window {window.window} px, stride {window.stride}, "
        f"{window.blend} blending; {where}"
    )


def view_key(item: InputItem, meta: ImageMeta) -> ViewKey | None:
    """(patient, laterality, view) from the manifest row, else the image's tags; None if any
    is unknown."""
    patient = item.patient_id or meta.patient_id
    laterality = item.laterality or meta.laterality
    view = item.view or meta.view
    if not patient or laterality not in ("L", "R") or not view:
        return None
    return (patient, laterality, view.upper())


def write_output(
    path: Path, prediction: Prediction, item: InputItem, predictor: Predictor, output_format: str
) -> None:
    """Write one synthetic image in ``output_format`` (atomically)."""
    if output_format == "png":
        write_png16(path, prediction.image)
    elif output_format == "tiff":
        write_tiff16(path, prediction.image)
    else:
        from cemsynth.inference.dicom_out import write_synthetic_dicom

        write_synthetic_dicom(
            path,
            prediction.image,
            item.path,
            predictor.identity,
            predictor.preprocess_config.rc_window,
            settings_text(predictor),
            preview=predictor.preview,
        )


def run_predict(
    inputs: Sequence[Path],
    predictor: Predictor,
    out: Path,
    output_format: str,
    report: BatchReport,
    console: Console | None = None,
    progress: bool = True,
    overwrite: bool = False,
    raise_unexpected: bool = False,
) -> PredictSummary:
    """Predict every input, write the outputs, ``OUT/synthetic_manifest.csv`` and
    ``OUT/provenance.json``.

    Per-file problems go to ``report``; ``console`` (stderr) gets one timing line per image.
    Raises :class:`CemsynthError` for problems with the whole run (unwritable folder, an
    input inside ``out``, an output over a file predict did not write, see
    :func:`plan_outputs`; a folder made with other settings, see
    :func:`~cemsynth.inference.provenance.check_folder`), before any inference. An
    unexpected error on one file (a bug met on it) is that file's one-line failure and the
    batch goes on, unless ``raise_unexpected`` (``--debug``) lets it propagate with its traceback.
    """
    from cemsynth.io.reader import detect_format, read_image

    console = console or Console(stderr=True)
    start = time.perf_counter()
    out = Path(out)
    output_format = check_output_format(output_format)  # before any file is touched
    summary = PredictSummary()
    items = expand_inputs(inputs, report)
    plan = plan_outputs(items, out, output_format, overwrite)
    provenance = Provenance.of(predictor)
    new_folder = check_folder(out, provenance)
    ensure_writable_dir(out, "output folder")  # a read-only --out fails now, not per image
    if new_folder:
        write_provenance(out, provenance)
    rows: list[ManifestRow] = []
    produced: dict[ViewKey, Path] = {}
    with progress_bar(console=console, enabled=progress) as bar:
        task = bar.add_task("predict", total=len(plan))
        for item, target in ((p.item, p.target) for p in plan):
            bar.update(task, description=item.path.name)
            try:
                if target is None:
                    summary.n_skipped += 1
                    continue
                if output_format == "dicom" and detect_format(item.path) != "dicom":
                    raise InputFileError(
                        item.path,
                        "DICOM output needs a DICOM input (its patient and study); "
                        "use --format png or tiff",
                    )
                image = read_image(item.path, item.pixel_spacing_mm)
                key = view_key(item, image.meta)
                if key is not None and key in produced:
                    raise InputFileError(
                        item.path,
                        f"same patient, laterality and view ({' '.join(key)}) as "
                        f"{produced[key]}; not written",
                    )
                prediction = predictor.predict(image)
                written = time.perf_counter()
                write_output(target, prediction, item, predictor, output_format)
                seconds = dict(prediction.seconds, write=time.perf_counter() - written)
            except InputFileError as exc:
                report.add_error(exc)
            except Exception as exc:
                if raise_unexpected:
                    raise
                report.add_failure(item.path, internal_error(exc))
            else:
                report.add_success()
                summary.outputs.append(target)
                if key is None:
                    summary.n_unlisted += 1
                else:
                    produced[key] = item.path
                    rows.append(
                        ManifestRow(*key, path=target.name, source=str(item.path.absolute()))
                    )
                    # rewritten after every image: an interrupted run still lists its outputs
                    summary.manifest_path = write_synthetic_manifest(out, rows)
                _log(console, item, target, prediction, seconds)
            finally:
                bar.advance(task)
    summary.seconds = time.perf_counter() - start
    return summary


def _log(
    console: Console,
    item: InputItem,
    target: Path,
    prediction: Prediction,
    seconds: dict[str, float],
) -> None:
    windows = (
        "single pass"
        if prediction.n_windows == 0
        else f"{prediction.n_evaluated}/{prediction.n_windows} windows"
    )
    stages = ", ".join(f"{name} {value:.2f} s" for name, value in seconds.items())
    total = sum(seconds.values())
    console.print(
        f"{item.path} -> {target.name}: {windows}; {stages}; total {total:.2f} s",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
