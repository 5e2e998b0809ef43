"""The answers database: SQLite in WAL mode, one transaction per saved answer.

``synchronous=FULL`` makes every committed answer durable before the app replies, so killing
the server (or the machine) never loses an answer the reader saw confirmed. A primary key on
(reader, case_code) makes a second answer for the same case fail instead of overwriting.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cemsynth.errors import CemsynthError
from cemsynth.reader_study.study import make_private
from cemsynth.vocabulary import BPE_GRADES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    reader TEXT NOT NULL,
    case_code TEXT NOT NULL,
    session INTEGER NOT NULL CHECK (session IN (1, 2)),
    position INTEGER NOT NULL,
    bpe TEXT NOT NULL CHECK (bpe IN ({BPE_SQL})),
    lesion INTEGER NOT NULL CHECK (lesion IN (0, 1)),
    confidence INTEGER NOT NULL,
    artifact_halo INTEGER NOT NULL CHECK (artifact_halo IN (0, 1)),
    artifact_hallucination INTEGER NOT NULL CHECK (artifact_hallucination IN (0, 1)),
    artifact_other INTEGER NOT NULL CHECK (artifact_other IN (0, 1)),
    comment TEXT NOT NULL,
    marks TEXT NOT NULL,
    answered_at TEXT NOT NULL,
    PRIMARY KEY (reader, case_code)
);
CREATE TABLE IF NOT EXISTS drafts (
    reader TEXT NOT NULL,
    case_code TEXT NOT NULL,
    draft TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (reader, case_code)
);
""".replace("{BPE_SQL}", ", ".join(f"'{grade}'" for grade in BPE_GRADES))


class DuplicateAnswer(Exception):
    """The reader already answered this case; answers are final."""


@dataclass(frozen=True)
class Answer:
    """One saved answer. ``marks`` is a list of {"view", "x", "y"} in image pixels."""

    reader: str
    case_code: str
    session: int
    position: int
    bpe: str
    lesion: int
    confidence: int
    artifact_halo: int
    artifact_hallucination: int
    artifact_other: int
    comment: str
    marks: list[dict[str, Any]]
    answered_at: str


class AnswerStore:
    """Answers and drafts of one study. Opens a short-lived connection per operation, so the
    store can be shared by the app's worker threads."""

    def __init__(self, path: Path, study_id: str) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, exist_ok=True)
        make_private(path.parent)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('study_id', ?)", (study_id,)
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'study_id'").fetchone()
        if row[0] != study_id:
            raise CemsynthError(
                f"{path}: holds answers of study {row[0]}, not {study_id}; "
                "it belongs to another build"
            )
        make_private(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def save_answer(self, answer: Answer) -> None:
        """Insert ``answer`` and drop its draft in one transaction; DuplicateAnswer if one
        exists."""
        with self._connect() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        answer.reader,
                        answer.case_code,
                        answer.session,
                        answer.position,
                        answer.bpe,
                        answer.lesion,
                        answer.confidence,
                        answer.artifact_halo,
                        answer.artifact_hallucination,
                        answer.artifact_other,
                        answer.comment,
                        json.dumps(answer.marks, separators=(",", ":")),
                        answer.answered_at,
                    ),
                )
                db.execute(
                    "DELETE FROM drafts WHERE reader = ? AND case_code = ?",
                    (answer.reader, answer.case_code),
                )
                db.execute("COMMIT")
            except sqlite3.IntegrityError as exc:
                db.execute("ROLLBACK")
                raise DuplicateAnswer(answer.case_code) from exc
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def answers(self, reader: str | None = None) -> list[Answer]:
        """All answers (of one reader when given), ordered by reader, session and position."""
        query = "SELECT * FROM answers"
        params: tuple[str, ...] = ()
        if reader is not None:
            query += " WHERE reader = ?"
            params = (reader,)
        query += " ORDER BY reader, session, position"
        with self._connect() as db:
            rows = db.execute(query, params).fetchall()
        return [
            Answer(
                reader=r[0],
                case_code=r[1],
                session=r[2],
                position=r[3],
                bpe=r[4],
                lesion=r[5],
                confidence=r[6],
                artifact_halo=r[7],
                artifact_hallucination=r[8],
                artifact_other=r[9],
                comment=r[10],
                marks=json.loads(r[11]),
                answered_at=r[12],
            )
            for r in rows
        ]

    def answered(self, reader: str) -> dict[str, str]:
        """Case code -> answer time (ISO 8601 UTC) for every case ``reader`` answered."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT case_code, answered_at FROM answers WHERE reader = ?", (reader,)
            ).fetchall()
        return {code: when for code, when in rows}

    def save_draft(self, reader: str, case_code: str, draft: dict[str, Any], when: str) -> None:
        """Keep the reader's unfinished form for a case (replaces the previous draft)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO drafts VALUES (?, ?, ?, ?) ON CONFLICT (reader, case_code) "
                "DO UPDATE SET draft = excluded.draft, updated_at = excluded.updated_at",
                (reader, case_code, json.dumps(draft, separators=(",", ":")), when),
            )

    def draft(self, reader: str, case_code: str) -> dict[str, Any] | None:
        """The reader's unfinished form for a case, or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT draft FROM drafts WHERE reader = ? AND case_code = ?", (reader, case_code)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))
