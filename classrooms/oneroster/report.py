"""What validation found: errors with file, line and column, and counts of planned changes.

`Report.as_json()` is the one shape the command line's `--json` prints, `RosterImport.report`
holds and the preview page reads. The error list is capped (`ERROR_CAP`) so that a garbage file
cannot fill memory or the database; `error_count` still says how many there were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from django.utils.translation import gettext_lazy

# The report's record kinds in the school's words, in the order pages list them.
RECORD_LABELS: Final = {
    "users": gettext_lazy("People"),
    "guardians": gettext_lazy("Guardian links"),
    "academicSessions": gettext_lazy("Terms"),
    "courses": gettext_lazy("Courses"),
    "classes": gettext_lazy("Classes"),
    "enrollments": gettext_lazy("Enrollments"),
}

ERROR_CAP: Final = 1000

# The kinds of rows we count, in the order the report lists them.
COUNTED: Final = ("users", "classes", "enrollments", "courses", "academicSessions", "guardians")


@dataclass(frozen=True, slots=True)
class RosterError:
    """One problem, where a spreadsheet user finds it: the header is line 1 of its file."""

    file: str
    line: int
    column: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }

    def as_text(self) -> str:
        return f"{self.file}:{self.line}: {self.column}: {self.message}"


@dataclass(slots=True)
class ErrorLog:
    cap: int = ERROR_CAP
    items: list[RosterError] = field(default_factory=list)
    total: int = 0

    def add(self, file: str, line: int, column: str, message: str) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(RosterError(file, line, column, message))

    def __bool__(self) -> bool:
        return self.total > 0


@dataclass(slots=True)
class Counts:
    create: int = 0
    update: int = 0
    deactivate: int = 0
    unchanged: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "create": self.create,
            "update": self.update,
            "deactivate": self.deactivate,
            "unchanged": self.unchanged,
        }

    @property
    def changed(self) -> int:
        return self.create + self.update + self.deactivate


def empty_counts() -> dict[str, Counts]:
    return {kind: Counts() for kind in COUNTED}


@dataclass(frozen=True)
class Report:
    valid: bool
    version: str
    mode: str
    errors: tuple[RosterError, ...]
    error_count: int
    counts: dict[str, Counts]
    file_names: tuple[str, ...] = ()

    @classmethod
    def refused(cls, message: str, *, file: str = "", file_names: tuple[str, ...] = ()) -> Report:
        """A report with one error and no counts: the bundle could not be read at all."""
        return cls(
            valid=False,
            version="",
            mode="",
            errors=(RosterError(file, 0, "", message),),
            error_count=1,
            counts=empty_counts(),
            file_names=file_names,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "version": self.version,
            "mode": self.mode,
            "errors": [error.as_json() for error in self.errors],
            "error_count": self.error_count,
            "counts": {kind: counts.as_json() for kind, counts in self.counts.items()},
            "file_names": list(self.file_names),
        }
