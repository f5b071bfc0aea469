"""Decode one CSV file of a bundle into rows that remember their line in the file.

Line numbers are what a spreadsheet user sees: the header is line 1, and a row whose quoted field
holds a newline takes two lines, so the rows after it move down by one. UTF-8 with or without a
byte-order mark is accepted, with CRLF or LF line ends; anything else is refused with a message
that tells the user how to save the file as UTF-8. Column names are matched without regard to case
(`sourcedid` is `sourcedId`); unknown columns are kept out of the way.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from classrooms.oneroster.report import ErrorLog

# A field longer than this is not a roster value; csv's own limit (128 KiB) stays as the backstop.
MAX_FIELD_CHARS = 10_000


@dataclass(slots=True)
class Table:
    """A CSV file's rows: `rows[i]` is a list of stripped values, `lines[i]` its first line."""

    name: str
    columns: dict[str, int] = field(default_factory=dict)
    rows: list[list[str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def has(self, column: str) -> bool:
        return column in self.columns

    def getter(self, column: str) -> _Getter:
        """A fast accessor for one column, "" where the column or the value is missing."""
        index = self.columns.get(column)
        return _Getter(index)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True, slots=True)
class _Getter:
    index: int | None

    def __call__(self, row: list[str]) -> str:
        if self.index is None or self.index >= len(row):
            return ""
        return row[self.index]


def decode(name: str, data: bytes, errors: ErrorLog) -> str | None:
    """The file's text, or None after logging why it cannot be read."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        errors.add(
            name,
            line,
            "",
            "This file is not saved as UTF-8, so some letters cannot be read. In your spreadsheet "
            'choose "Save as", pick "CSV UTF-8", and upload the file again.',
        )
        return None


def parse(name: str, text: str, known_columns: tuple[str, ...], errors: ErrorLog) -> Table | None:
    """Rows of a decoded CSV file; None after logging a problem that makes the file unreadable."""
    table = Table(name)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    known = {column.lower(): column for column in known_columns}
    try:
        header = next(reader, None)
        if header is None:
            errors.add(name, 1, "", "This file is empty: it needs at least its header line.")
            return None
        for index, raw in enumerate(header):
            label = raw.strip()
            column = known.get(label.lower())
            if column is None:
                continue
            if column in table.columns:
                errors.add(name, 1, column, f"The column {column} appears twice in the header.")
                return None
            table.columns[column] = index
        last_line = reader.line_num
        for row in reader:
            first_line = last_line + 1
            last_line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            values = [value.strip() for value in row]
            if any(len(value) > MAX_FIELD_CHARS for value in values):
                errors.add(name, first_line, "", "A value on this line is far too long.")
                continue
            table.rows.append(values)
            table.lines.append(first_line)
    except csv.Error as exc:
        errors.add(
            name,
            reader.line_num,
            "",
            f"This line cannot be read as CSV: a quotation mark is probably not closed ({exc}).",
        )
        return None
    return table
