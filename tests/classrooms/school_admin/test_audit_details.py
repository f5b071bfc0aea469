"""The audit log reads a roster import's counts as sentences, not as raw data."""

from __future__ import annotations

from classrooms.school_admin.views import audit_details


def test_an_imports_counts_read_one_line_per_kind_of_record_that_changed():
    details = {
        "counts": {
            "users": {"create": 5, "update": 1, "deactivate": 0, "unchanged": 3},
            "classes": {"create": 0, "update": 0, "deactivate": 2, "unchanged": 0},
            "courses": {"create": 0, "update": 0, "deactivate": 0, "unchanged": 4},
        },
        "mode": "bulk",
    }
    assert audit_details(details) == [
        ("People", "5 created, 1 updated"),
        ("Classes", "2 deactivated"),
        ("Mode", "bulk"),
    ]


def test_an_import_that_changed_nothing_says_so():
    unchanged = {"create": 0, "update": 0, "deactivate": 0, "unchanged": 7}
    assert audit_details({"counts": {"users": unchanged}}) == [("Changes", "no change")]
