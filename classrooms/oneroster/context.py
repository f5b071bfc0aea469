"""What the planning steps share: the bundle's tables, the school's state, errors, counts, changes.

Also the checks every file's rows go through (required values, sourcedId unique in its file,
status, dates), with the plain messages a school secretary reads in the preview.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from classrooms.oneroster import schema
from classrooms.oneroster.changes import Changes, Ref
from classrooms.oneroster.report import Counts, ErrorLog, empty_counts
from classrooms.oneroster.state import SchoolState
from classrooms.oneroster.tables import Table

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# What an empty required value means, where a generic message would not help.
EMPTY_MESSAGES = {
    "role": "This person has no role: write student, teacher, administrator or guardian.",
    "enabledUser": 'enabledUser is empty: write "true", or "false" for an account that is off.',
    "sourcedId": "This row has no sourcedId, the id that ties it to the other files.",
}
# How many changed sourcedIds the audit event keeps as a sample.
SAMPLE_SIZE = 50


@dataclass(slots=True)
class Row:
    """A row that passed the common checks."""

    line: int
    values: list[str]
    sourced_id: str
    deleted: bool


@dataclass
class PlanContext:
    state: SchoolState
    version: str
    modes: dict[str, str]
    tables: dict[str, Table]
    now: datetime
    errors: ErrorLog = field(default_factory=ErrorLog)
    counts: dict[str, Counts] = field(default_factory=empty_counts)
    changes: Changes = field(default_factory=Changes)
    org_sourced_id: str = ""
    # The school's org and its parent (a district): who may own courses and people.
    orgs_allowed: set[str] = field(default_factory=set)
    # sourcedIds a row of the bundle uses, mapped to the row (pk) or the new row (sourcedId).
    terms: dict[str, Ref] = field(default_factory=dict)
    courses: dict[str, Ref] = field(default_factory=dict)
    classes: dict[str, Ref] = field(default_factory=dict)
    users: dict[str, Ref] = field(default_factory=dict)
    # Rows with an error: references to them are not reported again as unknown.
    broken: set[tuple[str, str]] = field(default_factory=set)
    sample: list[str] = field(default_factory=list)

    def mode(self, name: str) -> str:
        return self.modes.get(name, "absent")

    def is_bulk(self, name: str) -> bool:
        return self.mode(name) == "bulk"

    def error(self, name: str, line: int, column: str, message: str) -> None:
        self.errors.add(name, line, column, message)

    def changed(self, sourced_id: str) -> None:
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append(sourced_id)

    def rows(self, name: str) -> Iterator[Row]:
        """The file's rows, after checking what every OneRoster file asks of a row."""
        table = self.tables.get(name)
        if table is None:
            return
        required = [
            (column, table.getter(column))
            for column in schema.REQUIRED[self.version][name]
            if column not in schema.MAY_BE_EMPTY
        ]
        get_id = table.getter("sourcedId")
        get_status = table.getter("status")
        get_modified = table.getter("dateLastModified")
        seen: dict[str, int] = {}
        for line, values in zip(table.lines, table.rows, strict=True):
            sourced_id = get_id(values)
            ok = True
            for column, get in required:
                if not get(values):
                    ok = False
                    message = EMPTY_MESSAGES.get(column, f"{column} is empty; every row needs one.")
                    self.error(name, line, column, message)
            if sourced_id in seen:
                ok = False
                self.error(
                    name,
                    line,
                    "sourcedId",
                    f"The sourcedId {sourced_id} is used twice in this file "
                    f"(first on line {seen[sourced_id]}).",
                )
            elif sourced_id:
                seen[sourced_id] = line
            status = get_status(values)
            if status and status not in schema.STATUSES:
                ok = False
                self.error(
                    name,
                    line,
                    "status",
                    f'The status "{status}" is not one we know: leave it empty, or write '
                    '"active" or "tobedeleted".',
                )
            modified = get_modified(values)
            if modified and not is_datetime(modified):
                ok = False
                self.error(
                    name,
                    line,
                    "dateLastModified",
                    f'"{modified}" is not a date and time; write it like 2025-03-12T09:30:00Z.',
                )
            if not ok:
                if sourced_id:
                    self.broken.add((name, sourced_id))
                continue
            yield Row(line, values, sourced_id, status == "tobedeleted")

    def date(self, name: str, line: int, column: str, value: str) -> date | None:
        """A YYYY-MM-DD date, or None after logging a plain message."""
        if _DATE_RE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.error(
            name,
            line,
            column,
            f'"{value}" is not a date we can read; write dates as year-month-day, like 2025-09-01.',
        )
        return None

    def too_long(self, name: str, line: int, column: str, value: str, limit: int) -> bool:
        if len(value) <= limit:
            return False
        self.error(name, line, column, f"This is longer than {limit} characters.")
        return True


def is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def split_ids(value: str) -> list[str]:
    """A list of sourcedIds in one field (`"a,b"`); OneRoster separates them with commas."""
    return [part.strip() for part in value.split(",") if part.strip()]
