"""Forms of the scheduling pages.

Times are typed as the school's wall clock (a day and a time of day) and turned into UTC instants
in the school's zone here, so the services see aware datetimes. The forms check what a person can
fix next to a field; the services hold every rule again, clashes included.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from classrooms.models import WEEKDAYS, School
from classrooms.scheduling.occurrences import at_local
from classrooms.scheduling.services import MAX_MINUTES, MIN_MINUTES

WEEKDAY_NAMES = dict(
    zip(
        WEEKDAYS,
        (
            _("Monday"),
            _("Tuesday"),
            _("Wednesday"),
            _("Thursday"),
            _("Friday"),
            _("Saturday"),
            _("Sunday"),
        ),
        strict=True,
    )
)


def _date_field(label: StrOrPromise, **kwargs: Any) -> forms.DateField:
    return forms.DateField(label=label, widget=forms.DateInput(attrs={"type": "date"}), **kwargs)


def _time_field(label: StrOrPromise, **kwargs: Any) -> forms.TimeField:
    return forms.TimeField(
        label=label, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"), **kwargs
    )


def _duration_field(**kwargs: Any) -> forms.IntegerField:
    return forms.IntegerField(
        label=_("Duration (minutes)"), min_value=MIN_MINUTES, max_value=MAX_MINUTES, **kwargs
    )


class LessonForm(forms.Form):
    """One lesson: its day, its local start, and a duration or an end time."""

    title = forms.CharField(label=_("Title"), max_length=200)
    day = _date_field(_("Day"))
    start_time = _time_field(_("Starts at"))
    duration_minutes = _duration_field(required=False, initial=55)
    end_time = _time_field(
        _("Or ends at"), required=False, help_text=_("An end time, when given, sets the duration.")
    )

    def __init__(self, *args: Any, school: School, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.school = school
        self.fields["start_time"].help_text = _("In the school's time zone (%(zone)s).") % {
            "zone": school.time_zone
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        day, start_time = data.get("day"), data.get("start_time")
        if day is None or start_time is None:
            return data
        tz = self.school.tzinfo
        data["starts_at"] = at_local(tz, day, start_time)
        if data.get("end_time") is not None:
            data["ends_at"] = at_local(tz, day, data["end_time"])
            if data["ends_at"] <= data["starts_at"]:
                self.add_error("end_time", _("A lesson must end after it starts."))
        elif data.get("duration_minutes") is not None:
            data["ends_at"] = data["starts_at"] + timedelta(minutes=data["duration_minutes"])
        elif "duration_minutes" not in self.errors:
            self.add_error("duration_minutes", _("Give a duration or an end time."))
        return data


class SeriesRuleForm(forms.Form):
    """What every lesson of a weekly series shares."""

    title = forms.CharField(label=_("Title"), max_length=200)
    weekdays = forms.MultipleChoiceField(
        label=_("Days of the week"),
        choices=list(WEEKDAY_NAMES.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one day of the week.")},
    )
    start_time = _time_field(_("Starts at"))
    duration_minutes = _duration_field(initial=55)

    def __init__(self, *args: Any, school: School, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["start_time"].help_text = _("In the school's time zone (%(zone)s).") % {
            "zone": school.time_zone
        }

    def check_range(self, first: str, last: str) -> None:
        starts_on, ends_on = self.cleaned_data.get(first), self.cleaned_data.get(last)
        if starts_on and ends_on and ends_on < starts_on:
            self.add_error(last, _("The last day cannot come before the first day."))


class SeriesForm(SeriesRuleForm):
    starts_on = _date_field(_("From"))
    ends_on = _date_field(_("Until"), required=False)
    field_order = ("title", "weekdays", "start_time", "duration_minutes", "starts_on", "ends_on")

    def __init__(self, *args: Any, term_ends_on: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["ends_on"].help_text = _("Empty: to the end of the term (%(day)s).") % {
            "day": date_format(term_ends_on)
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.check_range("starts_on", "ends_on")
        return data


class SeriesChangeForm(SeriesRuleForm):
    """The series' rule from a day on; the lessons before that day keep the old one."""

    from_date = _date_field(
        _("From"), help_text=_("Lessons from this day on follow the new rule; earlier ones stay.")
    )
    ends_on = _date_field(_("Until"))
    field_order = ("from_date", "title", "weekdays", "start_time", "duration_minutes", "ends_on")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.check_range("from_date", "ends_on")
        return data


class SeriesCancelForm(forms.Form):
    from_date = _date_field(
        _("Cancel the lessons from"),
        help_text=_("Lessons moved or cancelled one by one stay as they are."),
    )
