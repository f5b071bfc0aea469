"""`manage.py roster_import` and `roster_export`: exit codes, output lines, --json, writes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Membership
from classrooms.models import AuditAction, AuditEvent, RosterImport, RosterImportState
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import row_counts

pytestmark = pytest.mark.django_db


def write_folder(builder: RosterBuilder, folder: Path) -> Path:
    for name, data in builder.files():
        (folder / name).write_bytes(data)
    return folder


def roster_import(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("roster_import", *args, stdout=out)
    except SystemExit as exited:
        return int(str(exited.code)), out.getvalue()
    return 0, out.getvalue()


def test_without_apply_a_valid_bundle_exits_0_and_writes_nothing(school, tmp_path):
    """Not a row, not a RosterImport, not an audit event."""
    bundle = write_folder(RosterBuilder.school(), tmp_path)
    before = row_counts()

    code, out = roster_import(str(bundle), "--school", school.slug)

    assert code == 0
    assert "users: 5 to create" in out
    assert row_counts() == before


def test_errors_exit_1_one_per_line_as_file_line_column_message(school, tmp_path):
    builder = RosterBuilder.school()
    builder.row("users.csv", "u-pupil3")["role"] = "wizard"
    builder.row("enrollments.csv", "e-2")["classSourcedId"] = "k-nope"
    bundle = write_folder(builder, tmp_path)

    code, out = roster_import(str(bundle), "--school", school.slug, "--apply")

    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith("users.csv:5: role: ")
    assert lines[1].startswith("enrollments.csv:3: classSourcedId: ")
    assert "2 errors: nothing was written." in out
    assert not Membership.objects.filter(school=school).exists()


def test_json_prints_exactly_one_object_with_the_report(school, tmp_path):
    builder = RosterBuilder.school()
    builder.row("users.csv", "u-pupil3")["role"] = "wizard"
    archive = tmp_path / "roster.zip"
    archive.write_bytes(builder.zip())

    code, out = roster_import(str(archive), "--school", school.slug, "--json")

    report = json.loads(out)
    assert code == 1
    assert report["valid"] is False
    assert report["errors"] == [
        {
            "file": "users.csv",
            "line": 5,
            "column": "role",
            "message": report["errors"][0]["message"],
        }
    ]
    assert set(report["counts"]) >= {
        "users",
        "classes",
        "enrollments",
        "courses",
        "academicSessions",
    }
    assert set(report["counts"]["users"]) == {"create", "update", "deactivate", "unchanged"}


def test_apply_writes_the_roster_and_records_it_with_no_actor(school, tmp_path):
    bundle = write_folder(RosterBuilder.school("1.2"), tmp_path)

    code, out = roster_import(str(bundle), "--school", school.slug, "--apply", "--json")

    assert code == 0
    assert json.loads(out)["valid"] is True
    assert Membership.objects.filter(school=school).count() == 5
    event = AuditEvent.objects.get(school=school, action=AuditAction.IMPORT_APPLIED)
    assert event.actor is None
    assert event.details["counts"]["users"]["create"] == 5
    assert "users.csv" in event.details["file_names"]
    assert RosterImport.objects.get(school=school).state == RosterImportState.APPLIED


def test_a_refused_bundle_exits_1_with_its_message(school, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")

    code, out = roster_import(str(tmp_path), "--school", school.slug)

    assert code == 1
    assert "notes.txt" in out


def test_an_unknown_school_is_a_command_error(db, tmp_path):
    """A CommandError: Django's command line prints it and exits with status 2."""
    with pytest.raises(CommandError, match="no-such-school"):
        call_command("roster_import", str(tmp_path), "--school", "no-such-school")


def test_roster_export_writes_a_zip_of_the_school(school, tmp_path):
    roster_import(
        str(write_folder(RosterBuilder.school(), tmp_path)), "--school", school.slug, "--apply"
    )
    out = tmp_path / "out.zip"

    call_command("roster_export", str(out), "--school", school.slug, stdout=io.StringIO())

    with zipfile.ZipFile(out) as archive:
        users = archive.read("users.csv").decode()
    assert "emile@school.test" in users
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT_DOWNLOADED, actor=None).count() == 1
