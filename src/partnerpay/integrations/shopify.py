"""Shopify webhooks: the signature check (PROVIDERS.md) and what each Shopify delivery means to partnerpay.

SKELETON: filled in by the Shopify part of issue 5.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from partnerpay.inbox.mapping import Outcome
from partnerpay.inbox.models import InboxItem
from partnerpay.kit.errors import ValidationError

PROVIDER = "shopify"


def map_event(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    raise ValidationError("Shopify deliveries cannot be processed yet", field="provider")
