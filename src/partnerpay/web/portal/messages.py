"""The partner's inbox: conversations with the team (general, per deal, per dispute), announcements, and
which optional emails to get. Another partner's thread, file or announcement is 404. Bodies are plain
text: the templates escape them (never `|safe`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.messaging import queries
from partnerpay.messaging.announcements import get_announcement_for_partner, mark_announcement_read
from partnerpay.messaging.attachments import describe_size
from partnerpay.messaging.preferences import preferences_of, set_preferences
from partnerpay.messaging.templates import KINDS, NON_TRANSACTIONAL
from partnerpay.messaging.threads import post_message
from partnerpay.web.message_files import read_uploads, save_uploads, store_of
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory
from partnerpay.web.thread_pages import ThreadPages

router = APIRouter(route_class=PageRoute)
BASE = "/portal/messages"
PREFERENCES = "/portal/profile/notifications"
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Files = Annotated[list[UploadFile] | None, File()]


def _partner(me: Actor) -> str:
    assert me.partner_id is not None
    return me.partner_id


def inbox_page(
    request: Request, me: Actor, *, error: PartnerpayError | None = None, values: dict[str, str] | None = None
) -> Response:
    unread_only = request.query_params.get("unread") == "1"
    with reading(request) as session:
        threads = queries.thread_rows(session, me, partner_id=_partner(me), unread=unread_only)
        announcements = queries.partner_announcements(session, _partner(me))
    context: dict[str, Any] = {
        "area": "portal",
        "me": me,
        "page": "messages",
        "threads": threads,
        "announcements": announcements,
        "unread_only": unread_only,
        "unread_threads": sum(1 for t in threads if t.unread),
        "unread_announcements": sum(1 for a in announcements if a.read_at is None),
        "error": error,
        "values": values or {},
        "limit": describe_size(store_of(request).max_bytes),
    }
    return render(request, "portal/messages.html", context, status_code=error.status if error else 200)


@router.get(BASE)
def inbox(request: Request, me: Actor = PartnerUserActor) -> Response:
    return inbox_page(request, me)


@router.post(BASE)
def start_thread(
    request: Request,
    me: Actor = PartnerUserActor,
    subject: Text = "",
    body: Text = "",
    file: Files = None,
    csrf_token: Csrf = None,
) -> Response:
    """A new conversation with the team, with optional files."""
    check_form_csrf(request, csrf_token)
    store = store_of(request)
    try:
        uploads = read_uploads(file, store)
        with unit_of_work(factory(request)) as session:
            ids = save_uploads(session, store, uploads, actor=me, program_id=me.program_id or "",
                               partner_id=_partner(me), now=now(request))  # fmt: skip
            message = post_message(session, author=me, partner_id=_partner(me), topic_type="general", topic_id=None,
                                   subject=subject, body=body, attachment_ids=ids, now=now(request))  # fmt: skip
    except PartnerpayError as exc:
        return inbox_page(request, me, error=exc, values={"subject": subject, "body": body})
    flash(request, "Message sent to the team.")
    return redirect(f"{BASE}/{message.thread_id}")


THREADS = ThreadPages(area="portal", base=BASE, template="portal/thread.html", unread="partner_unread")


@router.get(BASE + "/{thread_id}")
def show_thread(request: Request, thread_id: str, me: Actor = PartnerUserActor) -> Response:
    return THREADS.page(request, me, thread_id)


@router.post(BASE + "/{thread_id}")
def reply(
    request: Request,
    thread_id: str,
    me: Actor = PartnerUserActor,
    body: Text = "",
    file: Files = None,
    csrf_token: Csrf = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    return THREADS.reply(request, me, thread_id, body, file)


@router.get(BASE + "/{thread_id}/files/{attachment_id}")
def download(request: Request, thread_id: str, attachment_id: str, me: Actor = PartnerUserActor) -> Response:
    return THREADS.download(request, me, thread_id, attachment_id)


@router.get(BASE + "/announcements/{announcement_id}")
def show_announcement(request: Request, announcement_id: str, me: Actor = PartnerUserActor) -> Response:
    with unit_of_work(factory(request)) as session:
        row = get_announcement_for_partner(session, me, announcement_id)
        mark_announcement_read(session, actor=me, announcement_id=row.id, now=now(request))
        context = {"area": "portal", "me": me, "page": "messages", "a": row}
        return render(request, "portal/announcement.html", context)


def preferences_page(request: Request, me: Actor, *, error: PartnerpayError | None = None) -> Response:
    with reading(request) as session:
        current = preferences_of(session, _partner(me))
    context = {
        "area": "portal",
        "me": me,
        "page": "profile",
        "optional": [(KINDS[k], current[k]) for k in NON_TRANSACTIONAL],
        "always": [k for k in KINDS.values() if k.transactional],
        "error": error,
    }
    return render(request, "portal/notifications.html", context, status_code=error.status if error else 200)


@router.get(PREFERENCES)
def show_preferences(request: Request, me: Actor = PartnerUserActor) -> Response:
    return preferences_page(request, me)


@router.post(PREFERENCES)
def save_preferences(
    request: Request,
    me: Actor = PartnerUserActor,
    kinds: Annotated[list[str] | None, Form()] = None,
    csrf_token: Csrf = None,
) -> Response:
    """Checked boxes are the kinds wanted; every optional kind not checked is turned off."""
    check_form_csrf(request, csrf_token)
    chosen = set(kinds or [])
    wanted = {k: k in chosen for k in NON_TRANSACTIONAL}
    try:
        with unit_of_work(factory(request)) as session:
            set_preferences(session, actor=me, partner_id=_partner(me), subscribed=wanted, now=now(request))
    except PartnerpayError as exc:
        return preferences_page(request, me, error=exc)
    flash(request, "Email preferences saved.")
    return redirect(PREFERENCES)
