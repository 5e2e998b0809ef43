"""CSV tables written by people or by other tools: read with checks, parse cells, write.

Every parser raises :class:`~cemsynth.errors.InputFileError` naming the file, the line and the
problem, so a malformed table fails with one line before anything is written. Used by the
synthetic manifest of ``predict``, by evaluation and by the reader study.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cemsynth.errors import InputFileError
from cemsynth.io.atomic import write_text_atomic
from cemsynth.vocabulary import BPE_GRADES, normalize_laterality

_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


@dataclass(frozen=True)
class Row:
    """One data row of a CSV file; ``line`` is its 1-based line number (the header is line 1)."""

    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """The stripped cell of ``column`` ('' when the row is short)."""
        return (self.values.get(column) or "").strip()


def read_rows(path: Path, required: Sequence[str]) -> list[Row]:
    """Read a UTF-8 CSV with a header that holds at least ``required``; extra columns are kept."""
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not UTF-8 text ({exc.reason})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise InputFileError(path, "empty file: expected a header line")
    if len(set(header)) != len(header):
        raise InputFileError(path, "the header names a column twice")
    missing = [name for name in required if name not in header]
    if missing:
        raise InputFileError(
            path, f"missing column(s) {', '.join(missing)}; the header has {', '.join(header)}"
        )
    reader.fieldnames = header
    rows: list[Row] = []
    try:
        for record in reader:
            if None in record:  # more cells than header names
                raise InputFileError(path, f"line {reader.line_num}: more cells than columns")
            values = {key: value or "" for key, value in record.items()}
            if not any(value.strip() for value in values.values()):
                continue
            rows.append(Row(reader.line_num, values))
    except csv.Error as exc:
        raise InputFileError(path, f"line {reader.line_num}: {exc}") from exc
    if not rows:
        raise InputFileError(path, "no data rows after the header")
    return rows


def parse_bpe(path: Path, row: Row, column: str) -> str:
    """BI-RADS BPE category 'a'..'d' (case-insensitive) from ``column``."""
    value = row.get(column).lower()
    if value not in BPE_GRADES:
        raise InputFileError(path, f"line {row.line}: {column} '{row.get(column)}' is outside a-d")
    return value


def parse_binary(path: Path, row: Row, column: str) -> int:
    """0 or 1 from ``column`` (also accepts true/false and yes/no)."""
    value = row.get(column).lower()
    if value in _TRUE:
        return 1
    if value in _FALSE:
        return 0
    raise InputFileError(path, f"line {row.line}: {column} '{row.get(column)}' is not 0 or 1")


def parse_laterality(path: Path, row: Row, column: str = "laterality") -> str:
    """'L' or 'R' from ``column`` (also accepts left/right)."""
    value = normalize_laterality(row.get(column))
    if value is None:
        raise InputFileError(path, f"line {row.line}: {column} '{row.get(column)}' is not L or R")
    return value


def parse_nonempty(path: Path, row: Row, column: str) -> str:
    """The stripped text of ``column``; an empty cell is an error."""
    value = row.get(column)
    if not value:
        raise InputFileError(path, f"line {row.line}: {column} is empty")
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV document (``\\n`` line ends) from a header and rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV file atomically."""
    write_text_atomic(path, csv_text(header, rows))
