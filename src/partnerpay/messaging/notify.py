"""Telling partners what happened: a portal notification and an email, through the outbox, for any kind.

`notify_partner_event` is the one entry point for a single partner; `notify_partners` does the same for
many at once (a few queries and two bulk inserts, whatever the count). The wording is the program's
template for the kind, or the default (messaging/templates.py). Mail of a non-transactional kind goes
only to partners who did not turn it off, and carries a one-click unsubscribe link (added when sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.db.chunks import in_chunks
from partnerpay.jobs.outbox import enqueue
from partnerpay.messaging.email import BASE_URL, EMAIL_SEND, MAX_TEXT
from partnerpay.messaging.preferences import opted_out
from partnerpay.messaging.templates import Kind, get_kind, render, templates_of
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program

NOTIFY_PARTNER = "notify.partner"  # handled by jobs/handlers.py::notify_partner
PORTAL_URL = f"{BASE_URL}/portal"


def portal_link(path: str) -> str:
    """An absolute portal link, completed with PARTNERPAY_BASE_URL when the email is sent."""
    return f"{BASE_URL}{path}"


def notify_partner_event(
    session: Session,
    *,
    partner_id: str,
    kind: str,
    context: Mapping[str, Any],
    now: datetime,
    portal: bool = True,
    email: bool = True,
    to: Sequence[str] | None = None,
) -> None:
    """One partner-facing event (kind from templates.KINDS, e.g. "dispute.answered") in the caller's transaction.

    `context` fills the kind's placeholders ({partner}, {program} and {portal_url} are filled in here). The
    email goes to the partner's address, or to each address in `to` (e.g. the partner's portal logins).
    """
    addresses = {partner_id: list(to)} if to else None
    notify_partners(
        session, kind=kind, items=[(partner_id, context)], now=now, portal=portal, email=email, addresses=addresses
    )


def _partners(session: Session, partner_ids: list[str]) -> dict[str, tuple[str, str, str, str]]:
    """partner id → (name, email, program id, program name)."""
    found: dict[str, tuple[str, str, str, str]] = {}
    for chunk in in_chunks(partner_ids):
        rows = session.execute(
            select(Partner.id, Partner.name, Partner.email, Program.id, Program.name)
            .join(Program, Program.id == Partner.program_id)
            .where(Partner.id.in_(chunk))
        )
        for pid, name, email, program_id, program_name in rows:
            found[pid] = (name, email, program_id, program_name)
    return found


def notify_partners(
    session: Session,
    *,
    kind: str,
    items: Sequence[tuple[str, Mapping[str, Any]]],
    now: datetime,
    portal: bool = True,
    email: bool = True,
    addresses: Mapping[str, Sequence[str]] | None = None,
) -> int:
    """Notify many partners of one kind, each with its own context; returns how many emails were queued.

    `addresses` replaces a partner's own email address with others (its portal logins, for instance).
    """
    if not items:
        return 0
    spec = get_kind(kind)
    partner_ids = sorted({pid for pid, _ in items})
    partners = _partners(session, partner_ids)
    missing = [pid for pid in partner_ids if pid not in partners]
    if missing:
        raise ValueError(f"cannot notify unknown partner {missing[0]}")
    own = templates_of(session, sorted({p[2] for p in partners.values()}))
    muted = opted_out(session, kind, partner_ids) if email else set(partner_ids)
    notices: list[dict[str, Any]] = []
    emails: list[dict[str, Any]] = []
    for partner_id, context in items:
        name, address, program_id, program_name = partners[partner_id]
        subject, body = _wording(spec, own.get((program_id, kind)))
        values = {"partner": name, "program": program_name, "portal_url": PORTAL_URL, **context}
        rendered_subject, text = render(spec, subject, body, values)
        if portal:
            notices.append({"partner_id": partner_id, "kind": kind, "text": rendered_subject})
        if email and partner_id not in muted:
            for to in (addresses or {}).get(partner_id) or [address]:
                payload: dict[str, Any] = {"to": to, "subject": rendered_subject, "text": text[:MAX_TEXT]}
                payload["kind"] = kind
                if not spec.transactional:
                    payload["unsubscribe"] = {"partner_id": partner_id, "kind": kind}
                emails.append(payload)
    if notices:
        enqueue(session, NOTIFY_PARTNER, notices, now=now)
    if emails:
        enqueue(session, EMAIL_SEND, emails, now=now)
    return len(emails)


def _wording(spec: Kind, own: Any) -> tuple[str, str]:
    return (own.subject, own.body) if own is not None else (spec.subject, spec.body)
