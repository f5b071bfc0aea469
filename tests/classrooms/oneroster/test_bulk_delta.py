"""Bulk files are the whole truth (what disappears is deactivated); delta files change only the
rows they list (`tobedeleted` deactivates). Rows made by hand are left alone."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Role, User
from classrooms.models import Enrollment, EnrollmentRole, SchoolClass
from classrooms.selectors import classes_for_user
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import run
from tests.factories import EnrollmentFactory, member

pytestmark = pytest.mark.django_db


def test_a_person_missing_from_a_new_bulk_bundle_is_deactivated_not_deleted(school):
    """Their membership is switched off, their enrollments go, and they lose the class."""
    run(school, RosterBuilder.school())
    zoe = User.objects.get(email="zoe@school.test")
    maths = SchoolClass.objects.get(sourced_id="k-5b-maths")
    assert maths in classes_for_user(zoe)
    builder = RosterBuilder.school()
    builder.remove_user("u-pupil2")

    report = run(school, builder)

    assert report.valid, report.errors
    assert report.counts["users"].deactivate == 1
    assert report.counts["users"].unchanged == 4
    assert report.counts["enrollments"].deactivate == 1
    zoe.refresh_from_db()
    assert zoe.is_active
    assert Membership.objects.get(user=zoe, school=school).deactivated_at is not None
    assert not Enrollment.objects.filter(user=zoe).exists()
    assert maths not in classes_for_user(zoe)


def test_a_class_missing_from_a_bulk_bundle_is_archived_and_comes_back_when_listed(school):
    full = RosterBuilder.school()
    run(school, full)
    builder = RosterBuilder.school()
    builder.remove("classes.csv", "k-5b-french")
    builder.rows["enrollments.csv"] = [
        row for row in builder.rows["enrollments.csv"] if row["classSourcedId"] != "k-5b-french"
    ]

    report = run(school, builder)

    assert report.counts["classes"].deactivate == 1
    french = SchoolClass.objects.get(sourced_id="k-5b-french")
    assert french.archived_at is not None
    assert not Enrollment.objects.filter(school_class=french).exists()

    again = run(school, full)

    assert again.counts["classes"].update == 1
    french.refresh_from_db()
    assert french.archived_at is None


def test_rows_made_by_hand_are_left_alone_by_a_bulk_import(school):
    """A pupil added by hand, enrolled by hand in an imported class, survives re-imports."""
    run(school, RosterBuilder.school())
    maths = SchoolClass.objects.get(sourced_id="k-5b-maths")
    by_hand = member(school, Role.PUPIL, email="walkin@school.test")
    EnrollmentFactory.create(school_class=maths, user=by_hand, role=EnrollmentRole.PUPIL)

    report = run(school, RosterBuilder.school())

    assert report.valid
    assert report.counts["users"].deactivate == 0
    assert Membership.objects.get(user=by_hand).deactivated_at is None
    assert Enrollment.objects.filter(user=by_hand, school_class=maths).exists()


def test_delta_tobedeleted_deactivates_a_person_and_removes_an_enrollment(school):
    run(school, RosterBuilder.school())
    delta = RosterBuilder(mode="delta")
    delta.add(
        "users.csv",
        sourcedId="u-pupil3",
        status="tobedeleted",
        dateLastModified="2025-03-01T08:00:00Z",
        enabledUser="true",
        orgSourcedIds="org-school",
        role="student",
        username="paul@school.test",
        givenName="Paul",
        familyName="Verlaine",
        email="paul@school.test",
    )
    delta.add(
        "enrollments.csv",
        sourcedId="e-3",
        status="tobedeleted",
        dateLastModified="2025-03-01T08:00:00Z",
        classSourcedId="k-5b-maths",
        schoolSourcedId="org-school",
        userSourcedId="u-pupil2",
        role="student",
    )

    report = run(school, delta)

    assert report.valid, report.errors
    assert report.mode == "delta"
    assert report.counts["users"].deactivate == 1
    paul = User.objects.get(email="paul@school.test")
    assert Membership.objects.get(user=paul).deactivated_at is not None
    assert not Enrollment.objects.filter(user=paul).exists()
    assert not Enrollment.objects.filter(sourced_id="e-3").exists()
    # Everything the delta does not list is as it was.
    assert Membership.objects.active().filter(school=school).count() == 4
    assert Enrollment.objects.filter(school=school).count() == 3


def test_delta_rows_update_only_what_they_list_and_may_refer_to_existing_rows(school):
    run(school, RosterBuilder.school())
    delta = RosterBuilder(mode="delta")
    delta.add(
        "users.csv",
        sourcedId="u-new",
        status="active",
        dateLastModified="2025-03-01",
        enabledUser="true",
        orgSourcedIds="org-school",
        role="student",
        username="new@school.test",
        givenName="Nina",
        familyName="New",
        email="new@school.test",
    )
    delta.add(
        "enrollments.csv",
        sourcedId="e-new",
        status="active",
        dateLastModified="2025-03-01",
        classSourcedId="k-5b-french",
        schoolSourcedId="org-school",
        userSourcedId="u-new",
        role="student",
    )

    report = run(school, delta)

    assert report.valid, report.errors
    assert report.counts["users"].create == 1
    assert report.counts["enrollments"].create == 1
    assert Membership.objects.active().filter(school=school).count() == 6
    assert Enrollment.objects.filter(school=school).count() == 6


def test_a_later_bundle_of_another_school_org_is_refused(school):
    """After a first import, the school is tied to its org: another org's bundle is an error."""
    run(school, RosterBuilder.school())
    other = RosterBuilder.school(org="org-elsewhere")

    report = run(school, other, apply=False)

    assert not report.valid
    assert report.errors[0].file == "orgs.csv"
