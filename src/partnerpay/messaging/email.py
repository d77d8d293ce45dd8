"""Email through the outbox: services enqueue {to, subject, text}; the job "email.send" sends it.

Services have no settings, so a link in the text is written as `{base_url}/invite/…` and the job
puts PARTNERPAY_BASE_URL in its place when it sends. Once sent, the invitation token in the stored
payload is masked: the link's secret lives in the database only until the email has left.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from partnerpay.integrations.smtp import Email, EmailRejected, Mailer
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import Handler, JobContext, PermanentJobError
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.service import check_email

EMAIL_SEND = "email.send"
BASE_URL = "{base_url}"
INVITE_TOKEN = re.compile(r"/invite/[A-Za-z0-9_\-]{16,}")
MAX_SUBJECT = 200
MAX_TEXT = 20_000


def invite_link(token: str) -> str:
    """The absolute link is made when the email is sent (see module docstring)."""
    return f"{BASE_URL}/invite/{token}"


OPENINGS = {
    "invitation": (
        "You are invited to the {program} partner program",
        "you are invited to join the {program} partner program.",
    ),
    "welcome": (
        "Welcome to the {program} partner program",
        "welcome to the {program} partner program: your application was approved.",
    ),
    "reset": (
        "Set a new password for the {program} partner portal",
        "here is the link to set a new password for the {program} partner portal.",
    ),
}


def login_link_email(
    kind: str, *, program: str, partner: str, code: str, token: str, expires_at: datetime
) -> tuple[str, str]:
    """Subject and text of an email carrying a set-password link (kind: invitation, welcome or reset)."""
    subject, opening = (part.format(program=program) for part in OPENINGS[kind])
    text = (
        f"Hello {partner},\n\n{opening}\n\n"
        f"Set your password here (the link works once, until {expires_at:%d %b %Y %H:%M} UTC):\n"
        f"{invite_link(token)}\n\n"
        f"Your referral code is {code}. In the portal you see every commission you earn, why, "
        "and when it will be paid.\n\n"
        "If you did not expect this email, you can ignore it.\n"
    )
    return subject, text


def enqueue_email(session: Session, *, to: str, subject: str, text: str, now: datetime) -> str:
    """One email job in the caller's transaction; returns the job id."""
    to = check_email(to, field="to")
    subject = " ".join(subject.split())  # one line, whatever a program or partner name holds
    if not subject or len(subject) > MAX_SUBJECT:
        raise ValidationError(f"subject must have 1 to {MAX_SUBJECT} characters", field="subject")
    if not text.strip() or len(text) > MAX_TEXT:
        raise ValidationError(f"text must have 1 to {MAX_TEXT} characters", field="text")
    return enqueue(session, EMAIL_SEND, [{"to": to, "subject": subject, "text": text}], now=now)[0]


def _field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PermanentJobError(f"payload field {name!r} must be a non-empty string, got {value!r}")
    return value


def email_from_payload(payload: dict[str, Any], *, base_url: str) -> Email:
    to, subject, text = _field(payload, "to"), _field(payload, "subject"), _field(payload, "text")
    try:
        to = check_email(to, field="to")
    except ValidationError as exc:
        raise PermanentJobError(exc.message) from exc
    if "\n" in subject or "\r" in subject:
        raise PermanentJobError("payload field 'subject' must be one line")
    return Email(to=to, subject=subject, text=text.replace(BASE_URL, base_url.rstrip("/")))


def masked(payload: dict[str, Any]) -> dict[str, Any]:
    text = payload.get("text")
    if not isinstance(text, str):
        return payload
    return {**payload, "text": INVITE_TOKEN.sub("/invite/***", text)}


def email_handler(mailer: Mailer, *, base_url: str) -> Handler:
    """The "email.send" job: a refused recipient is permanent (dead job); a network error is retried."""

    def send_email(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        email = email_from_payload(payload, base_url=base_url)
        try:
            mailer.send(email)
        except EmailRejected as exc:
            raise PermanentJobError(str(exc)) from exc
        redacted = masked(payload)
        if redacted != payload:
            # Commits with the job's "done" mark; a failed send keeps the link for the retry.
            session.execute(update(OutboxJob).where(OutboxJob.id == context.job_id).values(payload=redacted))

    return send_email
