"""Errors the roster import raises to its callers; their messages are shown to school admins."""

from __future__ import annotations


# The names are the interface the upload pages were promised; they read as outcomes, not errors.
class RosterBundleRefused(Exception):  # noqa: N818
    """The upload is not a bundle we will read (too large, unsafe, not a zip or CSV files).

    `message` is plain language for the person who uploaded it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RosterImportNotApplicable(Exception):  # noqa: N818
    """Only an import that validated without errors, and is not applied yet, can be applied."""
