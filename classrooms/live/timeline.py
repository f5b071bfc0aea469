"""The geometry of a lesson's attendance timeline, drawn as server-rendered SVG.

One row per participant, one bar per presence, on a time axis that runs from the lesson's start
(or the first join, if earlier) to its end (or the last leave, if later), with ticks at the start,
the end and round local times in between. The template only places what this module computed, so
the chart needs no script and reads the same to a screen reader (each bar has a title).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import formats

from classrooms.live.selectors import LessonAttendance

WIDTH = 900
LABEL_WIDTH = 190
RIGHT_PAD = 24
TOP = 34
ROW_HEIGHT = 28
BAR_HEIGHT = 16
BOTTOM_PAD = 8
NAME_CHARS = 24
# Round steps for the ticks between the start and the end, in minutes; the first that gives at
# most MAX_TICKS ticks is used.
TICK_STEPS = (5, 10, 15, 30, 60, 120, 240)
MAX_TICKS = 8
# A round tick this close to the start or end tick (in px) would overlap its label.
TICK_CLEARANCE = 48


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Row:
    y: float
    name: str
    full_name: str
    is_pupil: bool
    bars: tuple[Bar, ...]

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT - 3


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    # The lesson's start and end are drawn stronger than round times.
    is_edge: bool


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    rows: tuple[Row, ...]
    ticks: tuple[Tick, ...]
    starts_label: str
    ends_label: str


def _clock(value: datetime, zone: ZoneInfo) -> str:
    return formats.time_format(value.astimezone(zone), "H:i")


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "\u2026"


def lesson_timeline(attendance: LessonAttendance, *, zone: ZoneInfo) -> Timeline:
    times = attendance.times
    spans = [span for row in attendance.rows for span in row.attendance.presences]
    axis_start = min([times.starts_at, *(span.start for span in spans)])
    axis_end = max([times.end, *(span.end for span in spans)])
    length = max(axis_end - axis_start, timedelta(minutes=1))
    plot_left, plot_right = LABEL_WIDTH, WIDTH - RIGHT_PAD

    def x_of(moment: datetime) -> float:
        return round(plot_left + (moment - axis_start) / length * (plot_right - plot_left), 1)

    rows = []
    for index, row in enumerate(attendance.rows):
        bars = tuple(
            Bar(
                x=x_of(span.start),
                # A presence of a few seconds still shows.
                width=max(x_of(span.end) - x_of(span.start), 2.0),
                label=f"{_clock(span.start, zone)}\u2013{_clock(span.end, zone)}",
            )
            for span in row.attendance.presences
        )
        rows.append(
            Row(
                y=TOP + index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                name=_short(row.user.display_name),
                full_name=row.user.display_name,
                is_pupil=row.is_pupil,
                bars=bars,
            )
        )
    plot_bottom = TOP + len(rows) * ROW_HEIGHT
    edges = [
        Tick(x=x_of(times.starts_at), label=_clock(times.starts_at, zone), is_edge=True),
        Tick(x=x_of(times.end), label=_clock(times.end, zone), is_edge=True),
    ]
    return Timeline(
        width=WIDTH,
        height=plot_bottom + BOTTOM_PAD,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=TOP,
        plot_bottom=plot_bottom,
        rows=tuple(rows),
        ticks=(*edges, *_round_ticks(axis_start, axis_end, zone, x_of, edges)),
        starts_label=_clock(times.starts_at, zone),
        ends_label=_clock(times.end, zone),
    )


def _round_ticks(
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    x_of: Callable[[datetime], float],
    edges: list[Tick],
) -> list[Tick]:
    minutes = (end - start) / timedelta(minutes=1)
    step = next((s for s in TICK_STEPS if minutes / s <= MAX_TICKS), TICK_STEPS[-1])
    local = start.astimezone(zone).replace(second=0, microsecond=0)
    # The first round local time after the start: minutes since midnight up to a multiple.
    since_midnight = local.hour * 60 + local.minute
    moment = local + timedelta(minutes=step - since_midnight % step)
    ticks = []
    while moment < end:
        x = x_of(moment)
        if all(abs(x - edge.x) >= TICK_CLEARANCE for edge in edges):
            ticks.append(Tick(x=x, label=_clock(moment, zone), is_edge=False))
        moment += timedelta(minutes=step)
    return ticks
