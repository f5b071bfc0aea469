"""Scheduling a class's lessons: one-off lessons and weekly series, their exceptions (one
occurrence cancelled or moved, the series changed or ended from a date on), and the clash checks
that keep a class and a teacher in one place at a time.

Writes are in `services` (also called by the REST API), permission-checked reads in `selectors`,
the teacher's and school admin's pages in `views`.
"""
