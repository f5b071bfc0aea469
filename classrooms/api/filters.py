"""Query-string parsing for the API's lists: date windows, weeks and id filters.

Bad input answers 400 naming the parameter; an id filter that names a foreign row is not an
error, it simply matches nothing, as a missing id would.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.exceptions import ValidationError

# A lesson list covers a week unless told otherwise, and never more than a term's quarter, so
# that one request cannot ask for a school's whole history.
DEFAULT_WINDOW = timedelta(days=7)
MAX_WINDOW = timedelta(days=92)


def _instant(value: str, *, name: str, end_of_day: bool) -> datetime:
    """An ISO date (midnight UTC; as an upper bound, the midnight after it) or datetime (naive
    means UTC)."""
    try:
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
    except ValueError:
        day = moment = None
    if day is not None:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    if moment is None:
        raise ValidationError({name: ["Give an ISO 8601 date or date-time."]})
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def date_window(params: Mapping[str, str], *, now: datetime) -> tuple[datetime, datetime]:
    """`from` (inclusive) and `to` (exclusive; a date includes its whole day) as UTC instants.

    Missing both: today (UTC) and the six days after. Missing one: a week from the other.
    """
    start_text, end_text = params.get("from"), params.get("to")
    start = _instant(start_text, name="from", end_of_day=False) if start_text else None
    end = _instant(end_text, name="to", end_of_day=True) if end_text else None
    if start is None and end is None:
        start = datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)
    if start is None:
        assert end is not None  # noqa: S101 - one of the two is set by now
        start = end - DEFAULT_WINDOW
    if end is None:
        end = start + DEFAULT_WINDOW
    if end <= start:
        raise ValidationError({"to": ["`to` must come after `from`."]})
    if end - start > MAX_WINDOW:
        raise ValidationError({"to": [f"Ask for at most {MAX_WINDOW.days} days at once."]})
    return start, end


def week_monday(params: Mapping[str, str], *, now: datetime) -> date:
    """The Monday of the week holding `week` (an ISO date), by default this week (UTC)."""
    text = params.get("week")
    if not text:
        day = now.astimezone(UTC).date()
    else:
        try:
            parsed = parse_date(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError({"week": ["Give an ISO 8601 date, like 2025-03-10."]})
        day = parsed
    return day - timedelta(days=day.weekday())


def id_param(params: Mapping[str, str], name: str) -> int | None:
    """An optional positive integer id filter."""
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise ValidationError({name: ["Give a positive integer id."]})
    return int(text)


def choice_param(params: Mapping[str, str], name: str, choices: list[str]) -> str | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if text not in choices:
        raise ValidationError({name: [f"Choose one of: {', '.join(choices)}."]})
    return text
