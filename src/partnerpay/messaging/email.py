"""Email through the outbox: services enqueue {to, subject, text}; the job "email.send" sends it.

Services have no settings, so a link in the text is written as `{base_url}/invite/…` and the job
puts PARTNERPAY_BASE_URL in its place when it sends. Once sent, the invitation token in the stored
payload is masked: the link's secret lives in the database only until the email has left.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from partnerpay.integrations.smtp import Email, EmailRejected, InlineImage, Mailer
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import External, JobContext, PermanentJobError
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.service import check_email

EMAIL_SEND = "email.send"
BASE_URL = "{base_url}"
INVITE_TOKEN = re.compile(r"/invite/[A-Za-z0-9_\-]{16,}")
MAX_SUBJECT = 200
MAX_TEXT = 20_000
MAX_HTML = 200_000
MAX_IMAGES_BYTES = 2_000_000  # inline images of one email, together (base64 in the job payload)
IMAGE_CID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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


def enqueue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    text: str,
    now: datetime,
    html: str | None = None,
    images: dict[str, bytes] | None = None,
    unsubscribe: tuple[str, str] | None = None,
) -> str:
    """One email job in the caller's transaction; returns the job id.

    `html` (optional) is sent as an alternative to the text, with `images` (cid → PNG bytes) inline in it.
    `unsubscribe` (partner id, kind) marks non-transactional mail: it gets the one-click unsubscribe headers
    and link (messaging/preferences.py) when sent.
    """
    to = check_email(to, field="to")
    subject = " ".join(subject.split())  # one line, whatever a program or partner name holds
    if not subject or len(subject) > MAX_SUBJECT:
        raise ValidationError(f"subject must have 1 to {MAX_SUBJECT} characters", field="subject")
    if not text.strip() or len(text) > MAX_TEXT:
        raise ValidationError(f"text must have 1 to {MAX_TEXT} characters", field="text")
    payload: dict[str, Any] = {"to": to, "subject": subject, "text": text}
    if html is not None:
        if not html.strip() or len(html) > MAX_HTML:
            raise ValidationError(f"html must have 1 to {MAX_HTML} characters", field="html")
        payload["html"] = html
    if images:
        if html is None:
            raise ValidationError("inline images need an html part to show them", field="images")
        if sum(len(data) for data in images.values()) > MAX_IMAGES_BYTES:
            raise ValidationError(f"inline images may hold {MAX_IMAGES_BYTES} bytes together", field="images")
        for cid in images:
            if not IMAGE_CID.match(cid):
                raise ValidationError(f"image id {cid!r} may hold letters, digits, '.', '_', '-'", field="images")
        payload["images"] = [{"cid": cid, "png": base64.b64encode(data).decode()} for cid, data in images.items()]
    if unsubscribe is not None:
        payload["unsubscribe"] = {"partner_id": unsubscribe[0], "kind": unsubscribe[1]}
    return enqueue(session, EMAIL_SEND, [payload], now=now)[0]


def _field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PermanentJobError(f"payload field {name!r} must be a non-empty string, got {value!r}")
    return value


def email_from_payload(
    payload: dict[str, Any], *, base_url: str, unsubscribe_secret: str | None = None, message_id: str | None = None
) -> Email:
    to, subject, text = _field(payload, "to"), _field(payload, "subject"), _field(payload, "text")
    try:
        to = check_email(to, field="to")
    except ValidationError as exc:
        raise PermanentJobError(exc.message) from exc
    if "\n" in subject or "\r" in subject:
        raise PermanentJobError("payload field 'subject' must be one line")
    base = base_url.rstrip("/")
    html = payload.get("html")
    if html is not None and not isinstance(html, str):
        raise PermanentJobError("payload field 'html' must be a string")
    text = text.replace(BASE_URL, base)
    headers: tuple[tuple[str, str], ...] = ()
    unsubscribe = payload.get("unsubscribe")
    if isinstance(unsubscribe, dict) and unsubscribe_secret:
        # Non-transactional mail (messaging/notify.py): RFC 8058 one-click unsubscribe, signed per partner and kind.
        from partnerpay.messaging.preferences import unsubscribe_token, unsubscribe_url

        token = unsubscribe_token(
            unsubscribe_secret, partner_id=str(unsubscribe.get("partner_id")), kind=str(unsubscribe.get("kind"))
        )
        url = unsubscribe_url(base, token)
        headers = (("List-Unsubscribe", f"<{url}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
        text = f"{text.rstrip()}\n\n--\nTo stop these emails: {url}\n"
    return Email(
        to=to,
        subject=subject,
        text=text,
        html=html.replace(BASE_URL, base) if html is not None else None,
        images=_inline_images(payload.get("images")),
        headers=headers,
        message_id=message_id,
    )


def _inline_images(value: Any) -> tuple[InlineImage, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PermanentJobError("payload field 'images' must be a list")
    images = []
    for item in value:
        cid, data = (item.get("cid"), item.get("png")) if isinstance(item, dict) else (None, None)
        if not isinstance(cid, str) or not IMAGE_CID.match(cid) or not isinstance(data, str):
            raise PermanentJobError("each inline image needs a 'cid' and base64 'png' data")
        try:
            images.append(InlineImage(cid=cid, data=base64.b64decode(data, validate=True)))
        except binascii.Error as exc:
            raise PermanentJobError(f"inline image {cid!r} is not valid base64") from exc
    return tuple(images)


def masked(payload: dict[str, Any]) -> dict[str, Any]:
    text = payload.get("text")
    if not isinstance(text, str):
        return payload
    return {**payload, "text": INVITE_TOKEN.sub("/invite/***", text)}


def email_handler(mailer: Mailer, *, base_url: str, unsubscribe_secret: str | None = None) -> External:
    """The "email.send" job: a refused recipient is permanent (dead job); a network error is retried.

    The SMTP conversation happens outside the worker's transaction (jobs.registry.External): a slow or
    failing server never holds SQLite's write lock. The Message-ID is made from the job id, so a message
    sent again after a crash between sending and marking it done is recognisably the same message.
    """

    def send_email(payload: dict[str, Any], context: JobContext) -> None:
        email = email_from_payload(
            payload, base_url=base_url, unsubscribe_secret=unsubscribe_secret, message_id=context.job_id
        )
        try:
            mailer.send(email)
        except EmailRejected as exc:
            raise PermanentJobError(str(exc)) from exc

    def forget_link(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        redacted = masked(payload)
        if redacted != payload:
            # Commits with the job's "done" mark; a failed send keeps the link for the retry.
            session.execute(update(OutboxJob).where(OutboxJob.id == context.job_id).values(payload=redacted))

    return External(effect=send_email, record=forget_link)
