"""Threads, messages, attachments, announcements and notification templates over the API (docs/api-messages.md).

API keys and staff sessions see the threads of their programs; a logged-in partner (portal session) may use
the same thread and attachment endpoints for its own conversations (another partner's thread is 404).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.messaging import announcements, queries, templates
from partnerpay.messaging.attachments import get_attachment, read_limited, store_attachment
from partnerpay.messaging.preferences import preferences_of, set_preferences
from partnerpay.messaging.schemas import (
    AnnouncementIn,
    AnnouncementOut,
    AttachmentOut,
    MessageIn,
    MessageOut,
    PreferencesIn,
    TemplateIn,
    ThreadIn,
    ThreadOut,
    dump,
)
from partnerpay.messaging.threads import get_thread, mark_read, post_message
from partnerpay.partners.models import Partner
from partnerpay.programs.service import get_program
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import CursorParam, Limit, now, reader
from partnerpay.web.api.v1.deals import Caller
from partnerpay.web.message_files import attachment_response, store_of
from partnerpay.web.security import factory

router = APIRouter(tags=["messages"])


def thread_out(session: Session, actor: Actor, thread_id: str) -> dict[str, Any]:
    view = queries.thread_view(session, actor, thread_id)
    messages = [
        {
            **dump(MessageOut, m),
            "thread_id": view.thread.id,
            "attachments": [dump(AttachmentOut, a) for a in m.attachments],
        }
        for m in view.messages
    ]
    return {**dump(ThreadOut, view.thread), "partner_name": view.partner_name, "messages": messages}


def message_out(session: Session, actor: Actor, thread_id: str, message_id: str) -> dict[str, Any]:
    view = queries.thread_view(session, actor, thread_id)
    (message,) = [m for m in view.messages if m.id == message_id]
    return {
        **dump(MessageOut, message),
        "thread_id": thread_id,
        "attachments": [dump(AttachmentOut, a) for a in message.attachments],
    }


@router.get("/threads")
def list_threads(
    request: Request,
    actor: Actor = Caller,
    partner_id: str | None = None,
    program_id: str | None = None,
    topic_type: str | None = Query(None, description="general, deal or dispute"),
    unread: bool = Query(False, description="only threads with messages the caller's side has not read"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """Threads visible to the caller, oldest first, paged by cursor."""
    with reader(request, actor) as session:
        page = queries.thread_page(
            session, actor, cursor=cursor, limit=limit, program_id=program_id, partner_id=partner_id,
            topic_type=topic_type, unread=unread,
        )  # fmt: skip
        return {"data": [dump(ThreadOut, t) for t in page.data], "next_cursor": page.next_cursor}


@router.post("/threads", status_code=201)
def create_thread(request: Request, body: ThreadIn, actor: Actor = Caller) -> JSONResponse:
    """A message in a new general thread, or in the deal's or dispute's one thread (opened on first use)."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        partner_id = actor.partner_id or data["partner_id"]
        if not partner_id:
            raise ValidationError("partner_id is required", field="partner_id")
        message = post_message(
            s, author=actor, partner_id=partner_id, topic_type=data["topic_type"], topic_id=data["topic_id"],
            subject=data["subject"], body=data["body"], attachment_ids=data["attachment_ids"], now=now(request),
        )  # fmt: skip
        return 201, thread_out(s, actor, message.thread_id)

    return idempotency.run(request, actor, data, work)


@router.get("/threads/{thread_id}")
def show_thread(request: Request, thread_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The thread with every message and its attachments, oldest first."""
    with reader(request, actor) as session:
        return thread_out(session, actor, thread_id)


@router.post("/threads/{thread_id}/messages", status_code=201)
def reply(request: Request, thread_id: str, body: MessageIn, actor: Actor = Caller) -> JSONResponse:
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        thread = get_thread(s, actor, thread_id)
        message = post_message(
            s, author=actor, partner_id=thread.partner_id, topic_type=thread.topic_type, topic_id=thread.topic_id,
            thread_id=thread.id, body=data["body"], attachment_ids=data["attachment_ids"], now=now(request),
        )  # fmt: skip
        return 201, message_out(s, actor, thread.id, message.id)

    return idempotency.run(request, actor, data, work)


@router.post("/threads/{thread_id}/read")
def read_thread(request: Request, thread_id: str, actor: Actor = Caller) -> JSONResponse:
    """The caller's side has read the thread (staff and partner keep separate counts)."""

    def work(s: Session) -> tuple[int, Any]:
        thread = mark_read(s, actor=actor, thread_id=thread_id, now=now(request))
        return 200, dump(ThreadOut, thread)

    return idempotency.run(request, actor, {}, work)


@router.post("/attachments", status_code=201)
def upload(
    request: Request,
    file: Annotated[UploadFile, File(description="pdf, png, jpeg, txt or csv; at most the configured limit")],
    partner_id: Annotated[str | None, Form()] = None,
    actor: Actor = Caller,
) -> JSONResponse:
    """Upload a file to attach to a message: 413 over the size limit, 422 for a type outside the allow-list."""
    store = store_of(request)
    data = read_limited(file.file, store)

    def work(s: Session) -> tuple[int, Any]:
        owner = actor.partner_id or partner_id
        if not owner:
            raise ValidationError("partner_id is required", field="partner_id")
        partner = s.get(Partner, owner)
        program_id = partner.program_id if partner is not None else ""
        attachment = store_attachment(
            s, store, actor=actor, program_id=program_id, partner_id=owner, filename=file.filename or "",
            declared_type=file.content_type or "", data=data, now=now(request),
        )  # fmt: skip
        return 201, dump(AttachmentOut, attachment)

    # The bytes are not part of the idempotency hash; the file's SHA-256 is.
    digest = hashlib.sha256(data).hexdigest()
    return idempotency.run(request, actor, {"partner_id": partner_id, "sha256": digest}, work)


@router.get("/attachments/{attachment_id}")
def show_attachment(request: Request, attachment_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as session:
        return dump(AttachmentOut, get_attachment(session, actor, attachment_id))


@router.get("/attachments/{attachment_id}/content")
def download(request: Request, attachment_id: str, actor: Actor = Caller) -> Response:
    """The file, after checking it still matches its SHA-256 (header X-Attachment-SHA256)."""
    with reader(request, actor) as session:
        return attachment_response(store_of(request), get_attachment(session, actor, attachment_id))


@router.post("/announcements", status_code=201)
def create_announcement(request: Request, body: AnnouncementIn, actor: Actor = Caller) -> JSONResponse:
    """Announce to every active partner of the program, or of one group or pilot; emails those opted in."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        done = announcements.announce(s, actor=actor, now=now(request), **data)
        return 201, dump(AnnouncementOut, done.announcement)

    return idempotency.run(request, actor, data, work)


@router.get("/programs/{program_id}/notification-templates")
def list_templates(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Every notification kind with the wording the program uses (its own, or the default) and its placeholders."""
    with reader(request, actor) as session:
        program = get_program(session, actor, program_id)
        data = []
        for kind in (templates.KINDS[k] for k in templates.EDITABLE):
            subject, body, custom = templates.wording(session, program.id, kind)
            data.append(
                {
                    "kind": kind.name,
                    "label": kind.label,
                    "transactional": kind.transactional,
                    "subject": subject,
                    "body": body,
                    "customised": custom,
                    "placeholders": list(kind.allowed),
                }
            )
        return {"data": data}


@router.put("/programs/{program_id}/notification-templates/{kind}")
def put_template(request: Request, program_id: str, kind: str, body: TemplateIn, actor: Actor = Caller) -> JSONResponse:
    """Set the program's subject and body for one kind; an unknown placeholder is 422 naming it."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        row = templates.save_template(s, actor=actor, program_id=program_id, kind=kind, now=now(request), **data)
        return 200, {"kind": row.kind, "subject": row.subject, "body": row.body, "customised": True}

    return idempotency.run(request, actor, data, work)


@router.delete("/programs/{program_id}/notification-templates/{kind}", status_code=204)
def delete_template(request: Request, program_id: str, kind: str, actor: Actor = Caller) -> Response:
    """Back to the default wording."""
    with unit_of_work(factory(request)) as session:
        templates.reset_template(session, actor=actor, program_id=program_id, kind=kind, now=now(request))
    return Response(status_code=204)


@router.get("/partners/{partner_id}/notification-preferences")
def get_preferences(request: Request, partner_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Which optional emails the partner gets (money and account mail always goes)."""
    with reader(request, actor) as session:
        partner = session.get(Partner, partner_id)
        if partner is None or not actor.sees(partner.program_id, partner.id):
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
        return {"subscribed": preferences_of(session, partner.id)}


@router.put("/partners/{partner_id}/notification-preferences")
def put_preferences(request: Request, partner_id: str, body: PreferencesIn, actor: Actor = Caller) -> JSONResponse:
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        set_preferences(s, actor=actor, partner_id=partner_id, subscribed=data["subscribed"], now=now(request))
        return 200, {"subscribed": preferences_of(s, partner_id)}

    return idempotency.run(request, actor, data, work)
