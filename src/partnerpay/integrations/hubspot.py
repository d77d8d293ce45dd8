"""HubSpot webhooks: the signature check (PROVIDERS.md) and what each HubSpot delivery means to partnerpay.

SKELETON: filled in by the HubSpot part of issue 5.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from partnerpay.inbox.mapping import Outcome
from partnerpay.inbox.models import InboxItem
from partnerpay.kit.errors import ValidationError

PROVIDER = "hubspot"


def map_event(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    raise ValidationError("HubSpot deliveries cannot be processed yet", field="provider")
