"""Homeroom's REST API (`/api/v1/`): the school's timetable read and written over JSON.

Thin DRF views over the app's selectors and the scheduling services: every queryset comes from a
selector scoped to the user's school and roster, every write goes through a service, and a row
outside the user's reach answers 404 exactly like a missing one. See docs/api.md.
"""
