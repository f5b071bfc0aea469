"""Who may open which class on the campus of `tests.factories.build_campus`.

The selector tests and the page tests read the same matrix, so the pages are held to exactly
what the selectors promise.
"""

from __future__ import annotations

import pytest

# Who may open which of school A's classes X and Y, and school B's class Z.
CLASS_ACCESS: dict[str, set[str]] = {
    "admin_a": {"class_x", "class_y"},
    "teacher_x": {"class_x"},
    "pupil_x": {"class_x"},
    "teacher_y": {"class_y"},
    "pupil_y": {"class_y"},
    "guardian_a": set(),
    "admin_b": {"class_z"},
    "teacher_z": {"class_z"},
    "pupil_z": {"class_z"},
    "inactive_pupil_x": set(),
    "leaver_x": set(),
    "outsider": set(),
}
PEOPLE: dict[str, str] = {
    "admin_a": "school A's admin",
    "teacher_x": "class X's teacher",
    "pupil_x": "a pupil of class X",
    "teacher_y": "class Y's teacher",
    "pupil_y": "a pupil of class Y",
    "guardian_a": "a guardian in school A of a pupil of class X",
    "admin_b": "school B's admin",
    "teacher_z": "a teacher of school B",
    "pupil_z": "a pupil of school B",
    "inactive_pupil_x": "a deactivated pupil of class X",
    "leaver_x": "a user left on class X's roster after leaving school A",
    "outsider": "a user of no school",
}
CLASSES = ("class_x", "class_y", "class_z")
ACCESS_CASES = [
    pytest.param(
        person, class_name, class_name in CLASS_ACCESS[person], id=f"{what} / {class_name}"
    )
    for person, what in PEOPLE.items()
    for class_name in CLASSES
]
