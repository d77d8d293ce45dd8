"""Notification kinds, their default wording, and a program's own templates for them.

A template is plain text with `{placeholder}` fields. Only the kind's listed names are allowed, with no
attribute, index, conversion or format spec: rendering is `str.format_map` over a dict of strings, so a
template can place values but never run code or reach into objects. Unknown placeholders are refused on
save (422 naming the placeholder).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.messaging.models import NotificationTemplate
from partnerpay.programs.service import get_program

COMMON = ("partner", "program", "portal_url")
MAX_SUBJECT = 200
MAX_BODY = 10_000


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    transactional: bool  # money and account mail always goes; the rest follows the partner's preferences
    placeholders: tuple[str, ...]
    subject: str
    body: str
    # False: the email is written elsewhere (the weekly report's HTML with charts); the kind exists for
    # preferences and unsubscribe links only, and has no template to edit.
    editable: bool = True

    @property
    def allowed(self) -> tuple[str, ...]:
        return COMMON + self.placeholders


_SIGN = "\n\nSee it in your portal: {portal_url}\n"
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "commission.approved",
            "Commissions approved",
            True,
            ("count", "amount", "link"),
            "{count} commission(s) approved: {amount} ({program})",
            "Hello {partner},\n\n{count} of your commissions were approved, {amount} in all. They are paid with "
            "the next payout once their hold ends.\n\nDetails: {link}" + _SIGN,
        ),
        Kind(
            "commission.on_hold",
            "New commission on hold",
            True,
            ("count", "amount", "hold_until", "explanation", "link"),
            "New commission of {amount}, on hold until {hold_until} ({program})",
            "Hello {partner},\n\nyou earned {count} new commission(s), {amount} in all:\n\n{explanation}\n\n"
            "It is on hold until {hold_until} (the refund window) and becomes payable after that.\n\n"
            "Details: {link}" + _SIGN,
        ),
        Kind(
            "update.requested",
            "Update requested on a lead or deal",
            False,
            ("item", "question", "reminder", "link"),
            "{program}: {reminder}an update on {item}, please",
            "Hello {partner},\n\nthe {program} team asks for an update on {item}:\n\n{question}\n\n"
            "Answer in one click in the partner portal: {link}\n",
        ),
        Kind(
            "dispute.answered",
            "Dispute answered",
            True,
            ("dispute", "status", "answer", "link"),
            "Your dispute {dispute} was answered: {status} ({program})",
            "Hello {partner},\n\nyour dispute {dispute} is now {status}.\n\n{answer}\n\nDetails: {link}" + _SIGN,
        ),
        Kind(
            "message.received",
            "New message from the team",
            False,
            ("subject", "author", "link"),
            "New message: {subject} ({program})",
            'Hello {partner},\n\n{author} wrote to you about "{subject}".\n\nRead and answer it here: {link}\n',
        ),
        Kind(
            "announcement",
            "Announcements",
            False,
            ("subject", "body", "link"),
            "{subject} ({program})",
            "Hello {partner},\n\n{body}\n\n{link}\n",
        ),
    )
}
# Payout status emails (payouts/notices.py): the default wording is the notice's own sentence.
_PAYOUT = ("amount", "date", "reason", "payout", "link")
_PAYOUT_TAIL = "\n\nPayout {payout}: {link}\n\nThis is a transactional message about money you are owed."
for _name, _label, _subject, _sentence in (
    ("payout.approved", "Payout approved", "Your payout of {amount} was approved ({program})",
     "Your payout of {amount} was approved on {date}; it is sent with the program's next transfer."),
    ("payout.sent", "Payout sent", "Your payout of {amount} is on its way ({program})",
     "Your payout of {amount} was sent on {date}; it is paid when the bank confirms the transfer."),
    ("payout.paid", "Payout paid", "Your payout of {amount} was paid ({program})",
     "Your payout of {amount} was paid on {date}."),
    ("payout.failed", "Payout failed", "Your payout of {amount} could not be paid ({program})",
     "Your payout of {amount} failed on {date}: {reason}. The amount is back in your balance and goes into the "
     "next payout; check your payout method."),
    ("payout.returned", "Payout returned", "Your payout of {amount} was returned by the bank ({program})",
     "Your payout of {amount} was returned on {date}: {reason}. The amount is back in your balance and goes into "
     "the next payout; check your payout method."),
):  # fmt: skip
    KINDS[_name] = Kind(_name, _label, True, _PAYOUT, _subject, _sentence + _PAYOUT_TAIL)
KINDS["report.weekly"] = Kind(
    "report.weekly",
    "Weekly performance report",
    False,
    (),
    "Your week with {program}",
    "Hello {partner},\n\nyour weekly report is in the portal: {portal_url}\n",
    editable=False,
)
EDITABLE = tuple(k.name for k in KINDS.values() if k.editable)
NON_TRANSACTIONAL = tuple(k.name for k in KINDS.values() if not k.transactional)


def get_kind(name: str, *, field: str = "kind") -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValidationError(
            f"unknown notification kind {name!r}; known: {', '.join(sorted(KINDS))}", field=field
        ) from None


def editable_kind(name: str, *, field: str = "kind") -> Kind:
    spec = get_kind(name, field=field)
    if not spec.editable:
        raise ValidationError(f"{spec.label} emails are not written from a template", field=field)
    return spec


def placeholders_of(text: str, *, field: str) -> list[str]:
    """The names a template uses; 422 for a malformed template or a field with attributes, indexes or specs."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValidationError(
            f"{field} is not a valid template ({exc}); write a literal brace as {{{{ or }}}}", field=field
        ) from None
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            written = name + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
            raise ValidationError(
                f"placeholder {{{written}}} in {field} is not allowed: use a plain name such as {{partner}}",
                field=field,
                placeholder=name,
            )
        names.append(name)
    return names


def check_template(kind: Kind, subject: str, body: str) -> tuple[str, str]:
    """Clean and validate a subject and body for `kind`; 422 naming an unknown placeholder."""
    subject = " ".join((subject or "").split())
    body = (body or "").replace("\r\n", "\n").strip()
    if not subject or len(subject) > MAX_SUBJECT:
        raise ValidationError(f"subject must have 1 to {MAX_SUBJECT} characters", field="subject")
    if not body or len(body) > MAX_BODY:
        raise ValidationError(f"body must have 1 to {MAX_BODY} characters", field="body")
    for field, text in (("subject", subject), ("body", body)):
        for name in placeholders_of(text, field=field):
            if name not in kind.allowed:
                raise ValidationError(
                    f"unknown placeholder {{{name}}} in {field}; {kind.name} knows "
                    + ", ".join("{" + n + "}" for n in kind.allowed),
                    field=field,
                    placeholder=name,
                )
    return subject, body


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""  # a placeholder a caller had no value for renders empty rather than failing the mail


def render(kind: Kind, subject: str, body: str, values: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) with the allowed placeholders filled in; values become plain strings."""
    safe = _Values({k: "" if values.get(k) is None else str(values[k]) for k in kind.allowed})
    rendered_subject = " ".join(subject.format_map(safe).split())[:MAX_SUBJECT]
    return rendered_subject, body.format_map(safe)


def templates_of(session: Session, program_ids: list[str]) -> dict[tuple[str, str], NotificationTemplate]:
    """The programs' own templates by (program_id, kind)."""
    if not program_ids:
        return {}
    rows = session.scalars(select(NotificationTemplate).where(NotificationTemplate.program_id.in_(program_ids)))
    return {(t.program_id, t.kind): t for t in rows}


def wording(session: Session, program_id: str, kind: Kind) -> tuple[str, str, bool]:
    """(subject, body, customised) the program uses for `kind`."""
    own = templates_of(session, [program_id]).get((program_id, kind.name))
    return (own.subject, own.body, True) if own else (kind.subject, kind.body, False)


def save_template(
    session: Session, *, actor: Actor, program_id: str, kind: str, subject: str, body: str, now: datetime
) -> NotificationTemplate:
    """Set a program's template for one kind (validated first; nothing is written on a bad placeholder)."""
    if not actor.can("write") or actor.partner_id is not None:
        raise Forbidden("editing notification templates needs the manager, finance or owner role")
    program = get_program(session, actor, program_id)
    spec = editable_kind(kind)
    subject, body = check_template(spec, subject, body)
    row = session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.program_id == program.id, NotificationTemplate.kind == spec.name
        )
    )
    before = {"subject": row.subject, "body": row.body} if row else None
    if row is None:
        row = NotificationTemplate(id=new_id("tpl"), program_id=program.id, kind=spec.name)
        session.add(row)
    row.subject, row.body, row.updated_by, row.updated_at = subject, body, actor.id, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="template.save",
        object_type="notification_template",
        object_id=row.id,
        program_id=program.id,
        before=before,
        after={"kind": spec.name, "subject": subject, "body": body},
        now=now,
    )
    return row


def reset_template(session: Session, *, actor: Actor, program_id: str, kind: str, now: datetime) -> bool:
    """Back to the default wording; returns whether the program had its own."""
    if not actor.can("write") or actor.partner_id is not None:
        raise Forbidden("editing notification templates needs the manager, finance or owner role")
    program = get_program(session, actor, program_id)
    spec = editable_kind(kind)
    row = session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.program_id == program.id, NotificationTemplate.kind == spec.name
        )
    )
    if row is None:
        return False
    audit.record(
        session,
        actor=actor,
        action="template.reset",
        object_type="notification_template",
        object_id=row.id,
        program_id=program.id,
        before={"subject": row.subject, "body": row.body},
        after=None,
        now=now,
    )
    session.delete(row)
    session.flush()
    return True
