"""Unsafe or oversized uploads are refused with a plain message, before anything is stored."""

from __future__ import annotations

import io
import zipfile

import pytest

from classrooms.oneroster.bundle import read_uploaded
from classrooms.oneroster.exceptions import RosterBundleRefused
from classrooms.oneroster.services import roster_import_create
from tests.classrooms.oneroster.builder import RosterBuilder
from tests.classrooms.oneroster.conftest import row_counts


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def valid_members() -> dict[str, bytes]:
    return dict(RosterBuilder.school().files())


REFUSED = {
    "a path that climbs out": {"../users.csv": b"x"},
    "an absolute path": {"/etc/users.csv": b"x"},
    "a windows path": {"C:\\roster\\users.csv": b"x"},
    "a nested folder": {"export/sub/users.csv": b"x", "export/orgs.csv": b"x"},
    "two folders": {"a/users.csv": b"x", "b/orgs.csv": b"x"},
    "a folder and loose files": {"a/users.csv": b"x", "orgs.csv": b"x"},
    "an unknown file name": {"users.csv": b"x", "grades.csv": b"x"},
    "more files than a roster has": {f"file{n}.csv": b"x" for n in range(20)},
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_unsafe_zip_is_refused(case):
    with pytest.raises(RosterBundleRefused) as refused:
        read_uploaded([("roster.zip", zipped(REFUSED[case]))])

    assert refused.value.message


def test_the_same_file_twice_in_a_zip_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("users.csv", b"a")
        archive.writestr("Users.csv", b"b")

    with pytest.raises(RosterBundleRefused, match="twice"):
        read_uploaded([("roster.zip", buffer.getvalue())])


def test_a_bundle_over_the_configured_size_is_refused_with_the_limit_in_mb(settings):
    settings.HOMEROOM_ROSTER_MAX_BYTES = 2 * 1024 * 1024
    files = [("users.csv", b"x" * (2 * 1024 * 1024 + 1))]

    with pytest.raises(RosterBundleRefused, match="2 MB"):
        read_uploaded(files)


def test_a_zip_bomb_stops_at_the_limit_whatever_its_headers_say(settings):
    """A small zip that inflates far past the limit is refused while it is read."""
    settings.HOMEROOM_ROSTER_MAX_BYTES = 1024 * 1024
    bomb = zipped({"users.csv": b"0" * (50 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024

    with pytest.raises(RosterBundleRefused, match="larger than"):
        read_uploaded([("roster.zip", bomb)])


@pytest.mark.parametrize(
    ("name", "data"),
    [("roster.zip", b"this is not a zip"), ("notes.txt", b"hello"), ("users.xlsx", b"PK")],
)
def test_what_is_neither_a_zip_nor_csv_files_is_refused(name, data):
    with pytest.raises(RosterBundleRefused):
        read_uploaded([(name, data)])


def test_a_zip_and_csv_files_together_are_refused():
    with pytest.raises(RosterBundleRefused, match="not both"):
        read_uploaded([("roster.zip", zipped(valid_members())), ("users.csv", b"x")])


def test_one_top_folder_and_macos_extras_are_accepted():
    members = {f"export/{name}": data for name, data in valid_members().items()}
    members["__MACOSX/export/._users.csv"] = b"junk"

    bundle = read_uploaded([("roster.zip", zipped(members))])

    assert "users.csv" in bundle.file_names
    assert "__MACOSX" not in "".join(bundle.file_names)


def test_file_names_are_matched_without_regard_to_case():
    bundle = read_uploaded([("Users.CSV", b"x"), ("MANIFEST.csv", b"y")])

    assert bundle.file_names == ("manifest.csv", "users.csv")


@pytest.mark.django_db
def test_a_refused_upload_stores_nothing(school, settings):
    settings.HOMEROOM_ROSTER_MAX_BYTES = 1024
    before = row_counts()

    with pytest.raises(RosterBundleRefused):
        roster_import_create(
            school=school, actor=None, files=[("roster.zip", zipped(valid_members()))]
        )

    assert row_counts() == before
