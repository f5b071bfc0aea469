"""Every problem is reported with its file, line and column, and a bundle with errors writes
nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accounts.models import Role
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import errors_of, row_counts, run
from tests.factories import member

pytestmark = pytest.mark.django_db

# In the default bundle, users.csv holds the teacher (line 2), pupil1..3 (lines 3-5) and the
# parent (line 6); enrollments.csv e-1..e-5 (lines 2-6); classes.csv maths (2), french (3);
# academicSessions.csv the year (2) and the semester (3); courses.csv maths (2), french (3).


def set_cell(file: str, sid: str, column: str, value: str) -> Callable[[RosterBuilder], None]:
    def change(builder: RosterBuilder) -> None:
        builder.row(file, sid)[column] = value

    return change


def duplicate_course(builder: RosterBuilder) -> None:
    builder.course("c-maths", "Maths again", "MATH6")


def drop_column(builder: RosterBuilder) -> None:
    builder.dropped_columns["classes.csv"] = {"courseSourcedId"}


def latin1_users(builder: RosterBuilder) -> None:
    builder.raw["users.csv"] = (
        "sourcedId,enabledUser,orgSourcedIds,role,username,givenName,familyName,email\r\n"
        "u-teacher,true,org-school,teacher,m@school.test,Marie,Curie,m@school.test\r\n"
        "u-pupil1,true,org-school,student,e@school.test,Émile,Zola,e@school.test\r\n"
    ).encode("latin-1")
    builder.rows["enrollments.csv"] = []
    builder.remove("users.csv", "u-parent")


def no_school_org(builder: RosterBuilder) -> None:
    for row in builder.rows["orgs.csv"]:
        row["name"], row["identifier"] = "Another school", "another"
    builder.add("orgs.csv", sourcedId="org-3", name="Third", type="school")


CASES = {
    "unknown class in an enrollment": (
        set_cell("enrollments.csv", "e-3", "classSourcedId", "k-nope"),
        ("enrollments.csv", 4, "classSourcedId"),
    ),
    "unknown user in an enrollment": (
        set_cell("enrollments.csv", "e-5", "userSourcedId", "u-nope"),
        ("enrollments.csv", 6, "userSourcedId"),
    ),
    "duplicate sourcedId in a file": (duplicate_course, ("courses.csv", 4, "sourcedId")),
    "missing required column": (drop_column, ("classes.csv", 1, "courseSourcedId")),
    "bad date": (
        set_cell("academicSessions.csv", "t-s1", "startDate", "01/09/2024"),
        ("academicSessions.csv", 3, "startDate"),
    ),
    "bad dateLastModified": (
        set_cell("courses.csv", "c-french", "dateLastModified", "yesterday"),
        ("courses.csv", 3, "dateLastModified"),
    ),
    "user with no role": (set_cell("users.csv", "u-pupil2", "role", ""), ("users.csv", 4, "role")),
    "unknown role": (set_cell("users.csv", "u-pupil3", "role", "wizard"), ("users.csv", 5, "role")),
    "class of an org that is not this school": (
        set_cell("classes.csv", "k-5b-french", "schoolSourcedId", "org-other"),
        ("classes.csv", 3, "schoolSourcedId"),
    ),
    "user of an org that is not this school": (
        set_cell("users.csv", "u-pupil1", "orgSourcedIds", "org-other"),
        ("users.csv", 3, "orgSourcedIds"),
    ),
    "no org is this school": (no_school_org, ("orgs.csv", 1, "name")),
    "bad status": (
        set_cell("enrollments.csv", "e-2", "status", "gone"),
        ("enrollments.csv", 3, "status"),
    ),
    "two users with the same email": (
        set_cell("users.csv", "u-pupil3", "email", "EMILE@school.test"),
        ("users.csv", 5, "email"),
    ),
    "a user without email": (
        lambda b: b.row("users.csv", "u-pupil2").update(email="", username="zoe"),
        ("users.csv", 4, "email"),
    ),
    "class whose course is unknown": (
        set_cell("classes.csv", "k-5b-maths", "courseSourcedId", "c-nope"),
        ("classes.csv", 2, "courseSourcedId"),
    ),
    "class whose term is unknown": (
        set_cell("classes.csv", "k-5b-maths", "termSourcedIds", "t-nope"),
        ("classes.csv", 2, "termSourcedIds"),
    ),
    "enabledUser not true or false": (
        set_cell("users.csv", "u-teacher", "enabledUser", "yes"),
        ("users.csv", 2, "enabledUser"),
    ),
    "a file not saved as UTF-8": (latin1_users, ("users.csv", 3, "")),
    "a guardian who is not in users.csv": (
        set_cell("users.csv", "u-parent", "agentSourcedIds", "u-nobody"),
        ("users.csv", 6, "agentSourcedIds"),
    ),
    "a person twice on a class roster": (
        set_cell("enrollments.csv", "e-3", "userSourcedId", "u-pupil1"),
        ("enrollments.csv", 4, "userSourcedId"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_is_reported_at_its_file_line_and_column(school, case):
    change, expected = CASES[case]
    builder = RosterBuilder.school()
    change(builder)

    report = run(school, builder, apply=False)

    assert not report.valid
    assert expected in errors_of(report), [e.as_text() for e in report.errors]
    assert all(error.message for error in report.errors)


def test_a_12_user_without_any_role_in_roles_csv_is_an_error(school):
    builder = RosterBuilder.school("1.2")
    builder.rows["roles.csv"] = [
        row for row in builder.rows["roles.csv"] if row["userSourcedId"] != "u-pupil3"
    ]

    report = run(school, builder, apply=False)

    assert ("users.csv", 5, "role") in errors_of(report)


def test_a_12_role_in_an_org_that_is_not_this_school_is_an_error(school):
    builder = RosterBuilder.school("1.2")
    builder.rows["roles.csv"][1]["orgSourcedId"] = "org-other"

    report = run(school, builder, apply=False)

    assert ("roles.csv", 3, "orgSourcedId") in errors_of(report)


def test_the_error_list_is_capped_but_counts_every_error(school):
    builder = RosterBuilder.school()
    for n in range(1200):
        builder.enroll(f"x-{n}", "k-missing", "u-pupil1", "student")

    report = run(school, builder, apply=False)

    assert len(report.errors) == 1000
    assert report.error_count == 1200
    assert len(report.as_json()["errors"]) == 1000


@pytest.mark.parametrize("case", ["unknown user in an enrollment", "a file not saved as UTF-8"])
def test_a_bundle_with_errors_writes_nothing_on_any_table(school, case):
    """First a valid import, then a bundle that would change a lot but has one error."""
    run(school, RosterBuilder.school())
    member(school, Role.PUPIL)
    builder = RosterBuilder.school()
    builder.row("users.csv", "u-teacher")["givenName"] = "Renamed"
    builder.remove_user("u-pupil2")
    builder.user("u-new", "student", "New", "Pupil", "new@school.test")
    CASES[case][0](builder)
    before = row_counts()

    report = run(school, builder, apply=True)

    assert not report.valid
    assert row_counts() == before
    from accounts.models import User

    assert not User.objects.filter(given_name="Renamed").exists()
