"""Running a school's roster from its own pages, without the Django admin.

The school admin's pages (people, classes and enrolments, terms and courses, invitations, the audit
log) under `/school/<school id>/`, the invitation link a person opens to set their password, and
the guardians' read-only view of their children's week. Reads are in `selectors`, writes in
`services` and `invitations`, each recording its audit event in the same transaction.
"""
