"""The study folder: its layout, and typed loaders for the plan, the key and the users.

::

    STUDY/
      study.json          the plan: readers, sessions (case codes in order, earliest open time),
                          cases (laterality and image codes); no truth, no image type
      images/CODE.dcm     de-identified DICOM, one per view of a case
      images/CODE.png     the same pixels stretched to 0..65535, 16-bit PNG, for the viewer
      key/                admin only (mode 0700): the sealed key
        key.csv           case and image codes -> patient, laterality, image type, source file
        truth.csv         patient_id, laterality, bpe, lesion (per breast)
        credentials.csv   the plain-text credentials to hand out
        auth.json         credential hashes and the token signing secret
        build.json        seed, inputs and the per-reader patient split
      db/answers.sqlite   admin only: the readers' answers (created by ``serve``)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.io.tables import parse_laterality, parse_nonempty, read_rows
from cemsynth.reader_study.auth import Role, UserRecord
from cemsynth.reader_study.tables import parse_image_type

STUDY_FORMAT = "cemsynth-reader-study/1"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def plan_path(root: Path) -> Path:
    return root / "study.json"


def images_dir(root: Path) -> Path:
    return root / "images"


def key_dir(root: Path) -> Path:
    return root / "key"


def db_path(root: Path) -> Path:
    return root / "db" / "answers.sqlite"


def format_time(moment: datetime) -> str:
    """ISO 8601 UTC with a 'Z', to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; a time without zone is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def make_private(path: Path) -> None:
    """Restrict a file or folder to its owner (the admin who built the study)."""
    os.chmod(path, PRIVATE_DIR_MODE if path.is_dir() else PRIVATE_FILE_MODE)


@dataclass(frozen=True)
class PlanCase:
    """What a reader may know of a case: its laterality and the image code of each view."""

    laterality: str
    images: dict[str, str]


@dataclass(frozen=True)
class PlanSession:
    """One reading session: number (1 or 2), earliest open time, case codes in reading order."""

    number: int
    opens_at: datetime
    cases: tuple[str, ...]


@dataclass(frozen=True)
class StudyPlan:
    """The contents of ``study.json``."""

    root: Path
    study_id: str
    washout_days: float
    readers: tuple[str, ...]
    cases: dict[str, PlanCase]
    sessions: dict[str, tuple[PlanSession, ...]]

    def image_owner(self) -> dict[str, str]:
        """Image code -> case code."""
        return {image: code for code, case in self.cases.items() for image in case.images.values()}


@dataclass(frozen=True)
class KeyEntry:
    """The sealed truth about a case code."""

    patient_id: str
    laterality: str
    image_type: str


@dataclass(frozen=True)
class AuthData:
    """Users (name -> hashed credential) and the token signing secret (hex)."""

    secret: str
    users: dict[str, UserRecord]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputFileError(path, "not found; is this a folder made by 'reader-study build'?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from exc


def load_plan(root: Path) -> StudyPlan:
    """Read ``study.json`` of the study at ``root``."""
    if not root.is_dir():
        raise CemsynthError(f"{root}: study folder not found")
    path = plan_path(root)
    data = _read_json(path)
    try:
        if data["format"] != STUDY_FORMAT:
            raise InputFileError(path, f"format {data['format']!r} is not {STUDY_FORMAT}")
        cases = {
            code: PlanCase(laterality=str(case["laterality"]), images=dict(case["images"]))
            for code, case in data["cases"].items()
        }
        sessions = {
            reader: tuple(
                PlanSession(
                    number=int(s["number"]),
                    opens_at=parse_time(s["opens_at"]),
                    cases=tuple(s["cases"]),
                )
                for s in reader_sessions
            )
            for reader, reader_sessions in data["sessions"].items()
        }
        return StudyPlan(
            root=root,
            study_id=str(data["study_id"]),
            washout_days=float(data["washout_days"]),
            readers=tuple(data["readers"]),
            cases=cases,
            sessions=sessions,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(path, f"malformed study plan ({exc!r})") from exc


def load_key(root: Path) -> dict[str, KeyEntry]:
    """Case code -> truth about the case, from ``key/key.csv`` (admin only)."""
    path = key_dir(root) / "key.csv"
    entries: dict[str, KeyEntry] = {}
    for row in read_rows(path, ("case_code", "patient_id", "laterality", "image_type")):
        entries[parse_nonempty(path, row, "case_code")] = KeyEntry(
            patient_id=parse_nonempty(path, row, "patient_id"),
            laterality=parse_laterality(path, row),
            image_type=parse_image_type(path, row),
        )
    return entries


def load_auth(root: Path) -> AuthData:
    """Users and signing secret from ``key/auth.json`` (admin only)."""
    path = key_dir(root) / "auth.json"
    data = _read_json(path)
    try:
        users: dict[str, UserRecord] = {}
        for name, record in data["users"].items():
            role: Role = "admin" if record["role"] == "admin" else "reader"
            users[name] = UserRecord(role=role, salt=record["salt"], hash=record["hash"])
        return AuthData(secret=str(data["secret"]), users=users)
    except (KeyError, TypeError) as exc:
        raise InputFileError(path, f"malformed auth file ({exc!r})") from exc
