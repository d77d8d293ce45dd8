"""One conversation's page, its reply form and its file downloads, the same for the console and the portal.

The two sides differ only in who may look (the router's actor dependency), where the pages live, which
template draws them and whose unread mark a visit clears; `get_thread` and `get_attachment` answer 404 for
a thread or file the actor may not see, so this code never decides that itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response, UploadFile

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import NotFound, PartnerpayError
from partnerpay.messaging import queries
from partnerpay.messaging.attachments import describe_size, get_attachment
from partnerpay.messaging.threads import get_thread, mark_read, post_message
from partnerpay.web.message_files import attachment_response, read_uploads, save_uploads, store_of
from partnerpay.web.pages import flash, now, reading, redirect, render
from partnerpay.web.security import factory


@dataclass(frozen=True, slots=True)
class ThreadPages:
    area: str  # "console" | "portal"
    base: str  # where the side's thread pages live: "/messages" or "/portal/messages"
    template: str
    unread: str  # the thread attribute this side's visit clears: "staff_unread" | "partner_unread"

    def page(
        self, request: Request, me: Actor, thread_id: str, *, error: PartnerpayError | None = None, body: str = ""
    ) -> Response:
        with reading(request) as session:
            view = queries.thread_view(session, me, thread_id)
        if getattr(view.thread, self.unread) and error is None:
            with unit_of_work(factory(request)) as session:
                mark_read(session, actor=me, thread_id=thread_id, now=now(request))
        context: dict[str, Any] = {
            "area": self.area,
            "me": me,
            "page": "messages",
            "view": view,
            "error": error,
            "body": body,
            "limit": describe_size(store_of(request).max_bytes),
        }
        return render(request, self.template, context, status_code=error.status if error else 200)

    def reply(self, request: Request, me: Actor, thread_id: str, body: str, files: list[UploadFile] | None) -> Response:
        """Post a reply with its files (all or nothing); a refused reply shows the page again with the error."""
        store = store_of(request)
        try:
            uploads = read_uploads(files, store)
            with unit_of_work(factory(request)) as session:
                thread = get_thread(session, me, thread_id)
                ids = save_uploads(session, store, uploads, actor=me, program_id=thread.program_id,
                                   partner_id=thread.partner_id, now=now(request))  # fmt: skip
                post_message(session, author=me, partner_id=thread.partner_id, topic_type=thread.topic_type,
                             topic_id=thread.topic_id, thread_id=thread.id, body=body, attachment_ids=ids,
                             now=now(request))  # fmt: skip
        except NotFound:
            raise
        except PartnerpayError as exc:
            return self.page(request, me, thread_id, error=exc, body=body)
        flash(request, "Reply sent.")
        return redirect(f"{self.base}/{thread_id}")

    def download(self, request: Request, me: Actor, thread_id: str, attachment_id: str) -> Response:
        """A file of one of this thread's messages (a file of another thread, even a visible one, is 404 here)."""
        with reading(request) as session:
            get_thread(session, me, thread_id)
            attachment = get_attachment(session, me, attachment_id)
            if not queries.message_attached(session, attachment.id, thread_id):
                raise NotFound(f"attachment {attachment_id} not found", field="attachment_id")
        return attachment_response(store_of(request), attachment)
