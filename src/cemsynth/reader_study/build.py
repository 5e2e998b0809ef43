"""``reader-study build``: manifest + clinical and synthetic DICOM -> a blinded study folder.

Everything is written into a hidden temporary folder beside the destination and renamed into
place at the end, so an error or an interrupt leaves either no study or a complete one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cemsynth import __version__
from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.io.json_files import write_json
from cemsynth.io.tables import write_csv
from cemsynth.reader_study.auth import hash_credential, new_credential, new_secret
from cemsynth.reader_study.defaults import ADMIN_USER, USER_ID_PATTERN
from cemsynth.reader_study.deid import (
    SourceImage,
    case_uids,
    deidentified_dataset,
    read_source,
    viewer_pixels,
    write_dicom,
    write_png16,
)
from cemsynth.reader_study.design import Design, design_study
from cemsynth.reader_study.manifest import Breast, load_breasts
from cemsynth.reader_study.study import (
    STUDY_FORMAT,
    format_time,
    images_dir,
    key_dir,
    make_private,
    plan_path,
)
from cemsynth.reader_study.tables import ImageType
from cemsynth.vocabulary import STANDARD_VIEWS


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote: the study folder, counts, the credentials file and the seed."""

    root: Path
    n_breasts: int
    n_cases: int
    n_images: int
    credentials_path: Path
    seed: int


def parse_readers(text: str) -> list[str]:
    """Reader names from a comma-separated list, checked: distinct, valid, not the admin's."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise CemsynthError("--readers is empty; give names such as R1,R2,R3")
    for name in names:
        if not re.fullmatch(USER_ID_PATTERN, name):
            raise CemsynthError(
                f"reader name {name!r} is invalid: use letters, digits, '_' or '-' (max 32)"
            )
        if name.lower() == ADMIN_USER:
            raise CemsynthError(f"reader name {name!r} is reserved for the admin")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CemsynthError(f"reader(s) listed twice: {', '.join(duplicates)}")
    return names


def build_study(
    manifest: Path,
    clinical_dir: Path,
    synthetic_dir: Path,
    readers: Sequence[str],
    out: Path,
    *,
    seed: int | None,
    washout_days: int,
    start: datetime | None,
) -> BuildResult:
    """Build the blinded study at ``out`` (which must not exist, or be an empty folder).

    ``seed`` None draws a random seed (recorded in the key, so the build can be repeated);
    ``washout_days`` >= 0 separates a reader's two sessions; ``start`` (UTC) is when session 1
    opens, default now.
    """
    readers = parse_readers(",".join(readers))
    if washout_days < 0:
        raise CemsynthError(f"--washout-days must be >= 0, got {washout_days}")
    if seed is not None and seed < 0:
        raise CemsynthError(f"--seed must be >= 0, got {seed}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CemsynthError(f"{out}: already exists and is not empty; choose a new folder")
    breasts = load_breasts(manifest, clinical_dir, synthetic_dir)
    if seed is None:
        seed = secrets.randbelow(2**63)
    opens = (start or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    design = design_study([(b.patient_id, b.laterality) for b in breasts], readers, seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        work.chmod(0o755)  # mkdtemp makes it owner-only; the key folder stays owner-only
        n_images = _write_images(work, breasts, design, seed)
        credentials = _write_key(work, manifest, breasts, design, readers, seed, washout_days)
        _write_plan(work, design, readers, seed, washout_days, opens)
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildResult(
        root=out,
        n_breasts=len(breasts),
        n_cases=len(design.cases),
        n_images=n_images,
        credentials_path=out / credentials.relative_to(work),
        seed=seed,
    )


def _seed_secret(seed: int) -> str:
    return f"cemsynth-reader-study:{seed}"


def _write_images(root: Path, breasts: Sequence[Breast], design: Design, seed: int) -> int:
    """De-identified DICOM and viewer PNG for both views of every case; returns the count."""
    cases = {(c.patient_id, c.laterality, c.image_type): c for c in design.cases}
    folder = images_dir(root)
    count = 0
    for breast in breasts:
        for number, view in enumerate(STANDARD_VIEWS, start=1):
            clinical = read_source(breast.clinical[view], breast.laterality, view)
            synthetic = read_source(breast.synthetic[view], breast.laterality, view)
            if synthetic.pixels.shape != clinical.pixels.shape:
                raise InputFileError(
                    breast.synthetic[view],
                    f"synthetic image is {synthetic.pixels.shape} pixels but the clinical "
                    f"image {breast.clinical[view]} is {clinical.pixels.shape}; "
                    "blinding needs equal sizes",
                )
            pairs: tuple[tuple[ImageType, SourceImage], ...] = (
                ("clinical", clinical),
                ("synthetic", synthetic),
            )
            for image_type, source in pairs:
                case = cases[(breast.patient_id, breast.laterality, image_type)]
                uids = case_uids(_seed_secret(seed), case.code, case.image_codes)
                image_code = case.image_codes[view]
                dataset = deidentified_dataset(
                    source.pixels,
                    case_code=case.code,
                    laterality=breast.laterality,
                    view=view,
                    instance_number=number,
                    study_uid=uids["study"],
                    series_uid=uids["series"],
                    sop_uid=uids[view],
                    # Same geometry for both types: the synthetic image is made from the LE
                    # image of the same exposure, and a differing tag would unblind.
                    spacing_mm=clinical.spacing_mm,
                )
                write_dicom(folder / f"{image_code}.dcm", dataset)
                write_png16(folder / f"{image_code}.png", viewer_pixels(source.pixels))
                count += 1
    return count


def _write_key(
    root: Path,
    manifest: Path,
    breasts: Sequence[Breast],
    design: Design,
    readers: Sequence[str],
    seed: int,
    washout_days: int,
) -> Path:
    """The sealed key: code table, truth, credentials, hashes and build record; returns the
    credentials file."""
    folder = key_dir(root)
    folder.mkdir(mode=0o700)
    make_private(folder)
    by_breast = {(b.patient_id, b.laterality): b for b in breasts}
    key_rows = []
    for case in design.cases:
        breast = by_breast[(case.patient_id, case.laterality)]
        sources = breast.clinical if case.image_type == "clinical" else breast.synthetic
        for view in STANDARD_VIEWS:
            key_rows.append(
                [
                    case.code,
                    case.patient_id,
                    case.laterality,
                    case.image_type,
                    view,
                    case.image_codes[view],
                    breast.study_uid,
                    str(sources[view]),
                ]
            )
    write_csv(
        folder / "key.csv",
        [
            "case_code",
            "patient_id",
            "laterality",
            "image_type",
            "view",
            "image_code",
            "original_study_uid",
            "source_path",
        ],
        key_rows,
    )
    write_csv(
        folder / "truth.csv",
        ["patient_id", "laterality", "bpe", "lesion"],
        [[b.patient_id, b.laterality, b.bpe, b.lesion] for b in breasts],
    )
    users = {name: ("reader", new_credential()) for name in readers}
    users[ADMIN_USER] = ("admin", new_credential())
    credentials_path = folder / "credentials.csv"
    write_csv(
        credentials_path,
        ["user", "role", "credential"],
        [[name, role, credential] for name, (role, credential) in users.items()],
    )
    hashed = {}
    for name, (role, credential) in users.items():
        record = hash_credential(credential, "admin" if role == "admin" else "reader")
        hashed[name] = {"role": record.role, "salt": record.salt, "hash": record.hash}
    write_json(
        folder / "auth.json", {"secret": new_secret(), "users": hashed}, indent=2, sort_keys=True
    )
    build_record = {
        "cemsynth_version": __version__,
        "seed": seed,
        "washout_days": washout_days,
        "manifest": str(manifest),
        "n_breasts": len(breasts),
        "clinical_first": {plan.reader: list(plan.clinical_first) for plan in design.plans},
    }
    write_json(folder / "build.json", build_record, indent=2, sort_keys=True)
    for path in folder.iterdir():
        make_private(path)
    return credentials_path


def _write_plan(
    root: Path,
    design: Design,
    readers: Sequence[str],
    seed: int,
    washout_days: int,
    opens: datetime,
) -> None:
    """``study.json``: what the app may show; no truth, no image type, no patient."""
    plan = {
        "format": STUDY_FORMAT,
        "study_id": hashlib.sha256(_seed_secret(seed).encode()).hexdigest()[:16],
        "washout_days": washout_days,
        "readers": list(readers),
        "cases": {
            case.code: {"laterality": case.laterality, "images": case.image_codes}
            for case in sorted(design.cases, key=lambda c: c.code)
        },
        "sessions": {
            plan.reader: [
                {
                    "number": number,
                    "opens_at": format_time(opens + timedelta(days=washout_days * (number - 1))),
                    "cases": list(codes),
                }
                for number, codes in enumerate(plan.sessions, start=1)
            ]
            for plan in design.plans
        },
    }
    write_json(plan_path(root), plan, indent=2, sort_keys=True)
