"""API shapes of threads, messages, attachments, announcements and notification templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ThreadIn(_In):
    partner_id: StrictStr | None = Field(
        None, description="required for staff and API keys; a partner writes as itself"
    )
    topic_type: Literal["general", "deal", "dispute"] = "general"
    topic_id: StrictStr | None = Field(None, description="the deal's or dispute's id (its one thread is reused)")
    subject: StrictStr | None = Field(None, max_length=200, description="required for a new general thread")
    body: StrictStr = Field(max_length=20_000, description="plain text; shown escaped", examples=["When is my payout?"])
    attachment_ids: list[StrictStr] = Field(default_factory=list, max_length=10)


class MessageIn(_In):
    body: StrictStr = Field(max_length=20_000, description="plain text; shown escaped")
    attachment_ids: list[StrictStr] = Field(default_factory=list, max_length=10)


class AnnouncementIn(_In):
    program_id: StrictStr
    group_id: StrictStr | None = Field(None, description="only this group's (or pilot's) active partners")
    subject: StrictStr = Field(max_length=200)
    body: StrictStr = Field(max_length=20_000)


class TemplateIn(_In):
    subject: StrictStr = Field(max_length=200, examples=["{count} commission(s) approved ({program})"])
    body: StrictStr = Field(max_length=10_000)


class PreferencesIn(_In):
    subscribed: dict[StrictStr, StrictBool] = Field(examples=[{"announcement": False}])


class AttachmentOut(_Out):
    id: str
    partner_id: str | None
    sha256: str
    size: int
    content_type: str
    filename: str
    created_at: datetime


class MessageOut(_Out):
    id: str
    thread_id: str | None = None
    author_side: str
    author_label: str
    body: str
    created_at: datetime
    attachments: list[AttachmentOut] = Field(default_factory=list)


class ThreadOut(_Out):
    id: str
    program_id: str
    partner_id: str
    topic_type: str
    topic_id: str | None
    subject: str
    created_at: datetime
    last_message_at: datetime
    message_count: int
    staff_unread: int
    partner_unread: int


class AnnouncementOut(_Out):
    id: str
    program_id: str
    group_id: str | None
    subject: str
    body: str
    recipients: int
    emailed: int
    created_at: datetime


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")
