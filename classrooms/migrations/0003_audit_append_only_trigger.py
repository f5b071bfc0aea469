"""On PostgreSQL, refuse UPDATE and DELETE of audit events in the database itself.

Deleting a whole school (CASCADE) is the operator's act and is still allowed: the trigger lets a
delete through only when the school row is gone in the same transaction.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION classrooms_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND NOT EXISTS (
        SELECT 1 FROM classrooms_school WHERE id = OLD.school_id
    ) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER classrooms_auditevent_append_only
    BEFORE UPDATE OR DELETE ON classrooms_auditevent
    FOR EACH ROW EXECUTE FUNCTION classrooms_auditevent_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS classrooms_auditevent_append_only ON classrooms_auditevent;
DROP FUNCTION IF EXISTS classrooms_auditevent_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("classrooms", "0002_auditevent_rosterimport")]

    operations = [migrations.RunPython(create, drop)]
