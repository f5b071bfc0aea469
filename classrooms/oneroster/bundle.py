"""Read a OneRoster bundle from a zip, a folder or separate files, and refuse unsafe ones.

Everything here is hostile input. A bundle is refused (`RosterBundleRefused`, with a message for
the person who uploaded it) when it is larger than `settings.HOMEROOM_ROSTER_MAX_BYTES`, counting
the bytes actually read out of a zip rather than what its headers claim (a zip bomb stops at the
limit); when a zip member has an absolute path, a `..`, or sits in a folder other than one common
top folder (many exports zip a folder); when it has more files than the spec names, a file name we
do not know, the same file twice, or a password; when it is neither a zip nor CSV files. macOS
adds `__MACOSX/` and `.DS_Store` entries to the zips it makes: those are skipped, within a cap.

A bundle that passes is kept as a canonical zip (flat, spec file names) in `RosterImport.bundle`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from classrooms.oneroster import schema
from classrooms.oneroster.exceptions import RosterBundleRefused

_CHUNK = 64 * 1024
# Entries a zip may hold at most, counting folders and macOS' extras: more is not an export.
_MAX_ENTRIES = 4 * len(schema.ALLOWED_FILES)


@dataclass(frozen=True)
class Bundle:
    """The files of a bundle by their spec names (`users.csv`), in a stable order."""

    files: dict[str, bytes]

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(self.files)

    @property
    def size_bytes(self) -> int:
        return sum(len(data) for data in self.files.values())

    def to_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in self.files.items():
                archive.writestr(name, data)
        return buffer.getvalue()


def _limit() -> int:
    return int(settings.HOMEROOM_ROSTER_MAX_BYTES)


def _too_large() -> RosterBundleRefused:
    megabytes = _limit() / (1024 * 1024)
    shown = f"{megabytes:.0f}" if megabytes >= 1 else f"{megabytes:.2f}"
    return RosterBundleRefused(
        f"This roster is larger than {shown} MB, the most this site accepts. "
        "Ask your operator to raise the limit, or send the files in smaller parts."
    )


def _spec_name(name: str) -> str:
    canonical = schema.canonical_file_name(name)
    if canonical is None:
        expected = ", ".join(schema.ALLOWED_FILES)
        raise RosterBundleRefused(
            f'"{name}" is not a OneRoster file. A roster holds these files: {expected}.'
        )
    return canonical


def _ordered(files: dict[str, bytes]) -> Bundle:
    order = {name: index for index, name in enumerate(schema.ALLOWED_FILES)}
    return Bundle(dict(sorted(files.items(), key=lambda item: order[item[0]])))


def _is_macos_extra(parts: tuple[str, ...]) -> bool:
    return parts[0] == "__MACOSX" or parts[-1] == ".DS_Store"


def _member_parts(name: str) -> tuple[str, ...]:
    """The path parts of a zip member, refusing a path that could leave the bundle's folder."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise RosterBundleRefused(
            f'The zip holds "{name}", a path outside its folder. Zip the roster files themselves.'
        )
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if not parts or ".." in parts:
        raise RosterBundleRefused(
            f'The zip holds "{name}", a path outside its folder. Zip the roster files themselves.'
        )
    return parts


def read_zip(data: bytes) -> Bundle:
    """The files of a zipped bundle, read with the size limit enforced on the real bytes."""
    if len(data) > _limit():
        raise _too_large()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RosterBundleRefused(
            "This file is not a zip that can be opened. Upload the zip your school system "
            "exported, or the CSV files themselves."
        ) from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > _MAX_ENTRIES:
            raise RosterBundleRefused("This zip holds far more files than a roster has.")
        members: list[tuple[tuple[str, ...], zipfile.ZipInfo]] = []
        for info in entries:
            parts = _member_parts(info.filename)
            if _is_macos_extra(parts):
                continue
            if info.is_dir():
                if len(parts) > 1:
                    raise _nested(info.filename)
                continue
            members.append((parts, info))
        folders = {parts[0] for parts, _ in members if len(parts) > 1}
        if len(folders) > 1 or any(len(parts) > 2 for parts, _ in members):
            raise _nested(next(info.filename for parts, info in members if len(parts) > 1))
        if folders and any(len(parts) == 1 for parts, _ in members):
            raise _nested(next(info.filename for parts, info in members if len(parts) > 1))
        if len(members) > len(schema.ALLOWED_FILES):
            raise RosterBundleRefused(
                f"This zip holds {len(members)} files; a roster has at most "
                f"{len(schema.ALLOWED_FILES)}."
            )
        files: dict[str, bytes] = {}
        budget = _limit()
        for parts, info in members:
            name = _spec_name(parts[-1])
            if name in files:
                raise RosterBundleRefused(f"The zip holds {name} twice.")
            if info.flag_bits & 0x1:
                raise RosterBundleRefused(
                    "This zip is protected by a password. Export it again without one."
                )
            content, budget = _read_member(archive, info, budget)
            files[name] = content
    return _ordered(files)


def _nested(name: str) -> RosterBundleRefused:
    return RosterBundleRefused(
        f'The zip holds "{name}" in a folder of its own. Put all the roster files side by side, '
        "in the zip itself or in one folder."
    )


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> tuple[bytes, int]:
    """Read one member in chunks, stopping as soon as the whole bundle passes the limit."""
    chunks: list[bytes] = []
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                budget -= len(chunk)
                if budget < 0:
                    raise _too_large()
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise RosterBundleRefused(
            f"{info.filename} cannot be read out of the zip; the zip may be damaged."
        ) from exc
    return b"".join(chunks), budget


def _looks_zipped(data: bytes) -> bool:
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def read_uploaded(files: Sequence[tuple[str, bytes]]) -> Bundle:
    """One zip, or the separate CSV files, as uploaded (name, content)."""
    if not files:
        raise RosterBundleRefused("Choose the roster zip, or its CSV files, to upload.")
    if sum(len(data) for _, data in files) > _limit():
        raise _too_large()
    zips = [name for name, data in files if name.lower().endswith(".zip") or _looks_zipped(data)]
    if zips:
        if len(files) > 1:
            raise RosterBundleRefused("Upload either one zip, or the CSV files, not both.")
        return read_zip(files[0][1])
    if len(files) > len(schema.ALLOWED_FILES):
        raise RosterBundleRefused(
            f"That is {len(files)} files; a roster has at most {len(schema.ALLOWED_FILES)}."
        )
    found: dict[str, bytes] = {}
    for name, data in files:
        if "/" in name or "\\" in name or not name.lower().endswith(".csv"):
            raise RosterBundleRefused(
                f'"{name}" is neither a zip nor a CSV file. '
                "Upload the roster zip, or its CSV files."
            )
        canonical = _spec_name(name)
        if canonical in found:
            raise RosterBundleRefused(f"{canonical} was chosen twice.")
        found[canonical] = data
    return _ordered(found)


def read_path(path: Path) -> Bundle:
    """A bundle on disk for the command line: a zip file, or a folder of CSV files."""
    if path.is_dir():
        entries = sorted(
            entry for entry in path.iterdir() if entry.is_file() and entry.name != ".DS_Store"
        )
        if sum(entry.stat().st_size for entry in entries) > _limit():
            raise _too_large()
        return read_uploaded([(entry.name, entry.read_bytes()) for entry in entries])
    if not path.is_file():
        raise RosterBundleRefused(f"{path} is neither a zip file nor a folder.")
    if path.stat().st_size > _limit():
        raise _too_large()
    return read_uploaded([(path.name, path.read_bytes())])
