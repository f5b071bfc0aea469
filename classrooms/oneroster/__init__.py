"""OneRoster CSV (1.1 and 1.2) for one school: read a bundle, plan the changes, apply them, export.

The pieces, in the order a bundle goes through them: `bundle` reads a zip, a folder or separate
files and refuses what is unsafe or too large; `tables` decodes each CSV and keeps the line number a
spreadsheet user sees; `plan` (with `plan_catalog`, `plan_people`, `plan_enrollments`) checks the
rows against the school's current data and lists what would be created, updated and deactivated;
`apply` writes that list in one transaction; `export` writes the school back out as OneRoster 1.2.
`services` is the interface that pages, tasks and commands call. The rules (which org is the school,
how roles map, what bulk and delta do) are in `plan` and in docs/roster-import.md.
"""
