"""Write to the school's audit log. Call it from the service that makes the change, inside its
transaction, so the record and the change are committed together."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from classrooms.models import AuditAction, AuditEvent


@dataclass(frozen=True)
class AuditEntry:
    action: AuditAction
    target_type: str = ""
    target_id: str = ""
    target_label: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def audit_record(
    *,
    school_id: int,
    actor_id: int | None,
    action: AuditAction,
    target_type: str = "",
    target_id: object = "",
    target_label: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to a school's audit log. `actor_id` is None for the system."""
    return AuditEvent.objects.create(
        school_id=school_id,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label[:300],
        details=details or {},
    )


def audit_record_many(
    *, school_id: int, actor_id: int | None, entries: Iterable[AuditEntry]
) -> int:
    """Append many events in one query (a roster import records one per change)."""
    events = AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                school_id=school_id,
                actor_id=actor_id,
                action=entry.action,
                target_type=entry.target_type,
                target_id=entry.target_id,
                target_label=entry.target_label[:300],
                details=entry.details,
            )
            for entry in entries
        ],
        batch_size=2000,
    )
    return len(events)
