"""Forms of the school admin's pages.

They parse and check input for friendly errors next to the field; the services hold the same
rules again. Every choice of a row (a term, a pupil, a teacher) is limited to the admin's school,
so an id from another school is an invalid choice, never a lookup elsewhere.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User
from classrooms.models import AuditAction, Course, School, Term


class PersonChoiceField(forms.ModelChoiceField[User]):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name} ({obj.email})"


class PeopleChoiceField(forms.ModelMultipleChoiceField[User]):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name} ({obj.email})"


# --- Filters (GET) --------------------------------------------------------------------------------


class PeopleFilterForm(forms.Form):
    q = forms.CharField(label=_("Search by name or email"), required=False, max_length=200)
    role = forms.ChoiceField(
        label=_("Role"), required=False, choices=[("", _("All roles")), *Role.choices]
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Everyone")), ("active", _("Active")), ("deactivated", _("Deactivated"))],
    )


class ClassFilterForm(forms.Form):
    q = forms.CharField(label=_("Search by class or course"), required=False, max_length=200)
    status = forms.ChoiceField(
        label=_("Show"),
        required=False,
        choices=[("", _("Active classes")), ("archived", _("Archived classes")), ("all", _("All"))],
    )


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search by name or email"), required=False, max_length=200)


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        label=_("What"), required=False, choices=[("", _("Every action")), *AuditAction.choices]
    )
    actor = PersonChoiceField(
        label=_("Who"), required=False, queryset=User.objects.none(), empty_label=_("Anyone")
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, actors: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actor = self.fields["actor"]
        assert isinstance(actor, PersonChoiceField)  # noqa: S101 -- declared just above
        actor.queryset = actors

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", _("The end of the range cannot come before its start."))
        return data


# --- People ---------------------------------------------------------------------------------------


class PersonForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    given_name = forms.CharField(label=_("Given name"), max_length=150)
    family_name = forms.CharField(label=_("Family name"), max_length=150, required=False)
    roles = forms.MultipleChoiceField(
        label=_("Roles in this school"),
        choices=Role.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one role.")},
    )

    def __init__(self, *args: Any, identity_locked: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if identity_locked:
            for name in ("email", "given_name", "family_name"):
                self.fields[name].disabled = True
                self.fields[name].help_text = _(
                    "This account is also used outside this school, so its email and name stay "
                    "as they are."
                )


class PupilLinkForm(forms.Form):
    pupil = PersonChoiceField(label=_("Pupil"), queryset=User.objects.none())

    def __init__(self, *args: Any, pupils: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pupil = self.fields["pupil"]
        assert isinstance(pupil, PersonChoiceField)  # noqa: S101 -- declared just above
        pupil.queryset = pupils


# --- Classes --------------------------------------------------------------------------------------


class ClassForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_('For example "5B Maths".'))
    term = forms.ModelChoiceField[Term](label=_("Term"), queryset=Term.objects.none())
    course = forms.ModelChoiceField[Course](label=_("Course"), queryset=Course.objects.none())

    def __init__(self, *args: Any, school: School, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        term = self.fields["term"]
        course = self.fields["course"]
        assert isinstance(term, forms.ModelChoiceField)  # noqa: S101 -- declared just above
        assert isinstance(course, forms.ModelChoiceField)  # noqa: S101 -- declared just above
        term.queryset = Term.objects.filter(school=school).order_by("-starts_on", "name")
        course.queryset = Course.objects.filter(school=school).order_by("title")


class RosterForm(forms.Form):
    """People chosen among those the page offered (to enrol, or to take off the roster)."""

    users = PeopleChoiceField(
        label=_("People"),
        queryset=User.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Choose at least one person."),
            "invalid_choice": _("Someone chosen cannot be put on or taken off this roster."),
            "invalid_pk_value": _("Someone chosen cannot be put on or taken off this roster."),
        },
    )

    def __init__(self, *args: Any, people: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = self.fields["users"]
        assert isinstance(users, PeopleChoiceField)  # noqa: S101 -- declared just above
        users.queryset = people


# --- Terms and courses ----------------------------------------------------------------------------


class TermForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_('For example "2025-2026".'))
    starts_on = forms.DateField(
        label=_("First day"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(label=_("Last day"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if starts_on and ends_on and ends_on < starts_on:
            self.add_error("ends_on", _("The last day cannot come before the first day."))
        return data


class CourseForm(forms.Form):
    title = forms.CharField(
        label=_("Title"), max_length=200, help_text=_('For example "Mathematics".')
    )
    code = forms.CharField(
        label=_("Code"),
        max_length=64,
        help_text=_("A short code, unique in the school, such as MATH5."),
    )
