"""The school admin's roster pages: upload a OneRoster bundle, follow its check, read the
preview, apply it, export the roster — and nobody else reaches any of it."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, User
from classrooms.models import (
    AuditAction,
    AuditEvent,
    Enrollment,
    RosterImport,
    RosterImportState,
    School,
    SchoolClass,
)
from classrooms.oneroster import services as oneroster
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.factories import SchoolClassFactory, SchoolFactory, admin_of, member, pupil_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def school() -> School:
    """The school the default test bundle describes (see RosterBuilder.school)."""
    return SchoolFactory.create(name="Lycée Victor Hugo", slug="victor-hugo")


@pytest.fixture
def admin_client(school) -> tuple[Client, User]:
    admin = admin_of(school)
    client = Client()
    client.force_login(admin)
    return client, admin


def upload(client: Client, school: School, files: list[tuple[str, bytes]]) -> RosterImport:
    """Upload a bundle as the page's form does, and let its check run to the end.

    Without Redis the check runs in-process during the upload; with Redis it would wait for a
    worker, so the test runs the task's body itself (it does nothing once the check is done).
    """
    uploads = [io.BytesIO(content) for _name, content in files]
    for stream, (name, _content) in zip(uploads, files, strict=True):
        stream.name = name
    response = client.post(
        reverse("classrooms:roster-upload", args=[school.pk]), {"bundle": uploads}
    )
    assert response.status_code == 302, response.content.decode()
    roster_import = RosterImport.objects.get(school=school)
    assert response["Location"] == reverse(
        "classrooms:roster-import", args=[school.pk, roster_import.pk]
    )
    oneroster.roster_import_validate(roster_import_id=roster_import.pk)
    roster_import.refresh_from_db()
    return roster_import


def test_a_valid_zip_is_checked_previewed_and_applied(school, admin_client):
    client, admin = admin_client
    roster_import = upload(client, school, [("export.zip", RosterBuilder.school().zip())])
    assert roster_import.state == RosterImportState.VALID
    assert not Membership.objects.filter(school=school, role=Role.PUPIL).exists()

    page = client.get(reverse("classrooms:roster-import", args=[school.pk, roster_import.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "Ready to apply" in text
    assert "Apply these changes" in text
    assert "People" in text  # the preview's table of counts
    assert "Enrollments" in text

    status = client.get(
        reverse("classrooms:roster-import-status", args=[school.pk, roster_import.pk])
    ).json()
    assert status == {"state": "valid", "progress": 100}

    response = client.post(
        reverse("classrooms:roster-import-apply", args=[school.pk, roster_import.pk]), follow=True
    )
    assert "The roster import was applied." in response.content.decode()
    roster_import.refresh_from_db()
    assert roster_import.state == RosterImportState.APPLIED
    assert roster_import.applied_by == admin
    assert Membership.objects.filter(school=school, role=Role.PUPIL).count() == 3
    assert SchoolClass.objects.filter(school=school).count() == 2
    assert AuditEvent.objects.filter(
        school=school, action=AuditAction.IMPORT_APPLIED, actor=admin
    ).exists()


def test_the_separate_csv_files_can_be_uploaded_together(school, admin_client):
    client, _admin = admin_client
    roster_import = upload(client, school, RosterBuilder.school("1.2").files())
    assert roster_import.state == RosterImportState.VALID
    assert "users.csv" in roster_import.file_names


def test_a_bundle_with_problems_shows_each_at_its_file_line_and_column(school, admin_client):
    client, _admin = admin_client
    builder = RosterBuilder.school()
    builder.enroll("e-bad", "k-no-such-class", "u-pupil1", "student")
    roster_import = upload(client, school, builder.files())
    assert roster_import.state == RosterImportState.INVALID

    page = client.get(reverse("classrooms:roster-import", args=[school.pk, roster_import.pk]))
    text = page.content.decode()
    assert "Has errors" in text
    assert "enrollments.csv" in text
    assert "classSourcedId" in text
    assert "Apply these changes" not in text

    response = client.post(
        reverse("classrooms:roster-import-apply", args=[school.pk, roster_import.pk]), follow=True
    )
    assert "cannot be applied" in response.content.decode()
    assert not Enrollment.objects.filter(school=school).exists()


def test_a_bundle_over_the_size_limit_is_refused_with_a_message(school, admin_client, settings):
    client, _admin = admin_client
    settings.HOMEROOM_ROSTER_MAX_BYTES = 1024
    bundle = io.BytesIO(RosterBuilder.school().zip() + b"\0" * 2048)
    bundle.name = "export.zip"
    response = client.post(
        reverse("classrooms:roster-upload", args=[school.pk]), {"bundle": [bundle]}
    )
    assert response.status_code == 400
    assert "MB" in response.content.decode()
    assert not RosterImport.objects.exists()


def test_an_upload_without_a_file_asks_for_one(school, admin_client):
    client, _admin = admin_client
    response = client.post(reverse("classrooms:roster-upload", args=[school.pk]), {})
    assert response.status_code == 400
    assert "required" in response.content.decode()


def test_the_export_is_a_oneroster_zip_and_is_recorded(school, admin_client):
    client, admin = admin_client
    school_class = SchoolClassFactory.create(school=school, name="6A Maths")
    pupil_of(school_class, email="lea@school.test")
    response = client.post(reverse("classrooms:roster-export", args=[school.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        users = archive.read("users.csv").decode("utf-8-sig")
    assert {"manifest.csv", "users.csv", "classes.csv", "enrollments.csv"} <= names
    assert "lea@school.test" in users
    assert AuditEvent.objects.filter(
        school=school, action=AuditAction.EXPORT_DOWNLOADED, actor=admin
    ).exists()


def test_the_export_only_answers_post(school, admin_client):
    client, _admin = admin_client
    assert client.get(reverse("classrooms:roster-export", args=[school.pk])).status_code == 405


@pytest.mark.parametrize("who", ["teacher", "pupil", "guardian", "admin of another school"])
def test_nobody_but_the_schools_admins_reaches_the_roster_pages(school, who):
    """Every page and action answers 404 alike, as for a school or import that does not exist."""
    owner = admin_of(school)
    roster_import = oneroster.roster_import_create(
        school=school, actor=owner, files=[("export.zip", RosterBuilder.school().zip())]
    )
    if who == "admin of another school":
        outsider = admin_of(SchoolFactory.create())
    else:
        outsider = member(school, who)
    client = Client()
    client.force_login(outsider)
    ids = [school.pk, roster_import.pk]
    for method, name, args in (
        ("get", "classrooms:roster", ids[:1]),
        ("post", "classrooms:roster-upload", ids[:1]),
        ("post", "classrooms:roster-export", ids[:1]),
        ("get", "classrooms:roster-import", ids),
        ("get", "classrooms:roster-import-status", ids),
        ("post", "classrooms:roster-import-apply", ids),
    ):
        response = getattr(client, method)(reverse(name, args=args))
        assert response.status_code == 404, (method, name)
    roster_import.refresh_from_db()
    assert roster_import.state != RosterImportState.APPLIED


def test_an_admin_cannot_open_another_schools_import_through_their_own_school(school):
    other = SchoolFactory.create()
    foreign = oneroster.roster_import_create(
        school=other, actor=None, files=[("export.zip", RosterBuilder.school().zip())]
    )
    client = Client()
    client.force_login(admin_of(school))
    url = reverse("classrooms:roster-import", args=[school.pk, foreign.pk])
    assert client.get(url).status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(school):
    response = Client().get(reverse("classrooms:roster", args=[school.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
