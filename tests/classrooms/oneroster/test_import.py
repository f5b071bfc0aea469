"""A valid bundle becomes the school's people, classes and rosters, in 1.1 and in 1.2."""

from __future__ import annotations

import pytest

from accounts.models import Guardianship, Membership, Role, User
from classrooms.models import Course, Enrollment, EnrollmentRole, SchoolClass, Term
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import errors_of, run
from tests.factories import SchoolFactory, member

pytestmark = pytest.mark.django_db


def roster_of(school) -> set[tuple[str, str, str]]:
    return set(
        Enrollment.objects.filter(school=school).values_list(
            "school_class__name", "user__email", "role"
        )
    )


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_valid_bundle_creates_people_roles_terms_courses_classes_rosters_and_guardians(
    school, version
):
    """Everything in the bundle lands in the school, with the roles mapped to ours."""
    report = run(school, RosterBuilder.school(version))

    assert report.valid, report.errors
    assert report.version == version
    assert report.mode == "bulk"
    assert report.counts["users"].create == 5
    roles = dict(Membership.objects.filter(school=school).values_list("user__email", "role"))
    assert roles == {
        "marie.curie@school.test": Role.TEACHER,
        "emile@school.test": Role.PUPIL,
        "zoe@school.test": Role.PUPIL,
        "paul@school.test": Role.PUPIL,
        "anne.zola@home.test": Role.GUARDIAN,
    }
    emile = User.objects.get(email="emile@school.test")
    assert (emile.given_name, emile.family_name) == ("Émile", "Zola")
    assert not emile.has_usable_password()
    assert Membership.objects.get(user=emile).sourced_id == "u-pupil1"
    assert set(Term.objects.filter(school=school).values_list("name", "sourced_id")) == {
        ("2024-2025", "t-year"),
        ("Semester 1", "t-s1"),
    }
    assert set(Course.objects.filter(school=school).values_list("code", "title")) == {
        ("MATH5", "Mathematics"),
        ("FR5", "French"),
    }
    maths = SchoolClass.objects.get(school=school, sourced_id="k-5b-maths")
    assert (maths.name, maths.term.name, maths.course.code) == ("5B Maths", "2024-2025", "MATH5")
    assert roster_of(school) == {
        ("5B Maths", "marie.curie@school.test", EnrollmentRole.TEACHER),
        ("5B Maths", "emile@school.test", EnrollmentRole.PUPIL),
        ("5B Maths", "zoe@school.test", EnrollmentRole.PUPIL),
        ("5B French", "marie.curie@school.test", EnrollmentRole.TEACHER),
        ("5B French", "paul@school.test", EnrollmentRole.PUPIL),
    }
    guardianship = Guardianship.objects.get(school=school)
    assert (guardianship.guardian.email, guardianship.pupil.email) == (
        "anne.zola@home.test",
        "emile@school.test",
    )


def test_12_roles_csv_gives_a_person_several_roles_and_its_role_names_map(school):
    """1.2's roles.csv: a teacher who is also a principal, an aide, a relative."""
    builder = RosterBuilder.school("1.2")
    builder.add(
        "roles.csv",
        sourcedId="r-teacher-2",
        userSourcedId="u-teacher",
        roleType="secondary",
        role="principal",
        orgSourcedId=builder.org,
    )
    builder.user("u-aide", "aide", "Ada", "Aide", "aide@school.test")
    builder.user("u-rel", "relative", "Rita", "Zola", "rita@home.test", agents="u-pupil1")
    builder.user("u-site", "siteAdministrator", "Sam", "Site", "sam@school.test")

    report = run(school, builder)

    assert report.valid, report.errors
    held = set(Membership.objects.filter(school=school).values_list("user__email", "role"))
    assert {
        ("marie.curie@school.test", Role.TEACHER),
        ("marie.curie@school.test", Role.ADMIN),
        ("aide@school.test", Role.TEACHER),
        ("rita@home.test", Role.GUARDIAN),
        ("sam@school.test", Role.ADMIN),
    } <= held
    assert Guardianship.objects.filter(school=school, pupil__email="emile@school.test").count() == 2


def snapshot(school) -> dict[str, set[tuple[object, ...]]]:
    return {
        "users": set(User.objects.values_list("pk", "email", "given_name", "family_name")),
        "memberships": set(
            Membership.objects.values_list("pk", "role", "sourced_id", "deactivated_at")
        ),
        "classes": set(SchoolClass.objects.values_list("pk", "name", "term_id", "archived_at")),
        "enrollments": set(Enrollment.objects.values_list("pk", "school_class_id", "user_id")),
        "guardians": set(Guardianship.objects.values_list("pk", "guardian_id", "pupil_id")),
        "terms": set(Term.objects.values_list("pk", "name", "starts_on", "ends_on")),
        "courses": set(Course.objects.values_list("pk", "title", "code")),
    }


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_importing_the_same_bundle_again_changes_nothing(school, version):
    """Every count is "unchanged" and every row stays as it was."""
    builder = RosterBuilder.school(version)
    run(school, builder)
    before = snapshot(school)

    report = run(school, builder)

    assert report.valid
    for kind, counts in report.counts.items():
        assert counts.changed == 0, kind
    assert report.counts["users"].unchanged == 5
    assert report.counts["enrollments"].unchanged == 5
    assert snapshot(school) == before


def test_real_exports_bom_crlf_quoted_commas_and_newlines_accents_and_empty_optionals(school):
    """What spreadsheets and school systems write is read as the user sees it."""
    builder = RosterBuilder.school(bom=True, crlf=True)
    builder.row("users.csv", "u-pupil2")["familyName"] = "Ørsted, de la Tour"
    builder.row("users.csv", "u-pupil3")["familyName"] = "Verlaine\nRimbaud"
    builder.row("classes.csv", "k-5b-french")["title"] = "5B Français, groupe 1"

    report = run(school, builder)

    assert report.valid, report.errors
    assert User.objects.get(email="zoe@school.test").family_name == "Ørsted, de la Tour"
    assert User.objects.get(email="paul@school.test").family_name == "Verlaine\nRimbaud"
    assert SchoolClass.objects.filter(name="5B Français, groupe 1").exists()


def test_lf_line_ends_without_bom_are_read_too(school):
    report = run(school, RosterBuilder.school(crlf=False))

    assert report.valid, report.errors


def test_line_numbers_count_the_lines_a_quoted_newline_adds(school):
    """A name over two lines pushes the following rows down one line, as in a spreadsheet."""
    builder = RosterBuilder.school(crlf=True)
    builder.row("users.csv", "u-pupil1")["familyName"] = "Zola\r\nsecond line"
    builder.row("users.csv", "u-pupil3")["role"] = "wizard"

    report = run(school, builder, apply=False)

    # Header 1, teacher 2, pupil1 3-4, pupil2 5, pupil3 6.
    assert errors_of(report) == [("users.csv", 6, "role")]


def test_a_person_from_another_school_is_matched_by_email_and_keeps_their_name(school):
    """Their account is shared: this school gains a membership but cannot rename them."""
    other = SchoolFactory.create()
    existing = member(other, Role.TEACHER, email="Marie.Curie@School.test", given_name="Maria")

    report = run(school, RosterBuilder.school())

    assert report.valid, report.errors
    assert report.counts["users"].create == 5
    existing.refresh_from_db()
    assert existing.given_name == "Maria"
    assert Membership.objects.get(user=existing, school=school).role == Role.TEACHER
    assert User.objects.filter(email__iexact="marie.curie@school.test").count() == 1


def test_a_person_made_by_hand_in_this_school_is_adopted_and_renamed(school):
    """Same email, no sourcedId yet: the import takes the person over, no duplicate account."""
    by_hand = member(school, Role.PUPIL, email="zoe@school.test", given_name="Zo")

    report = run(school, RosterBuilder.school())

    assert report.valid, report.errors
    assert report.counts["users"].update == 1
    by_hand.refresh_from_db()
    assert by_hand.given_name == "Zoé"
    assert Membership.objects.get(user=by_hand, school=school).sourced_id == "u-pupil2"


def test_a_disabled_user_gets_a_membership_that_is_switched_off(school):
    builder = RosterBuilder.school()
    builder.row("users.csv", "u-pupil3")["enabledUser"] = "false"

    run(school, builder)

    membership = Membership.objects.get(school=school, sourced_id="u-pupil3")
    assert membership.deactivated_at is not None
    assert Membership.objects.active().filter(school=school).count() == 4


def test_a_class_with_several_terms_takes_the_first(school):
    builder = RosterBuilder.school()
    builder.row("classes.csv", "k-5b-maths")["termSourcedIds"] = "t-s1,t-year"

    run(school, builder)

    assert SchoolClass.objects.get(sourced_id="k-5b-maths").term.sourced_id == "t-s1"


def test_a_zip_with_its_files_in_one_top_folder_imports_like_the_files(school):
    builder = RosterBuilder.school()
    from classrooms.oneroster.services import roster_import_bundle_report

    report = roster_import_bundle_report(
        school=school, files=[("roster.zip", builder.zip("export-2025/"))], apply=True, actor=None
    )

    assert report.valid, report.errors
    assert Enrollment.objects.filter(school=school).count() == 5
