"""The timetable: week views for pupils, teachers and classes, the school admin's day view, and
each person's calendar feed (iCalendar, RFC 5545) behind a secret, renewable URL."""
