"""Imports every domain's models so that metadata (and Alembic) sees all tables."""

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.models import ApiKey, IdempotencyRecord, StaffUser
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.base import Base
from partnerpay.events.models import Customer, Event
from partnerpay.jobs.models import OutboxJob
from partnerpay.ledger.models import LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.messaging.models import Notification
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutRun
from partnerpay.programs.models import Program

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "CommissionLine",
    "Customer",
    "Event",
    "IdempotencyRecord",
    "LedgerAccount",
    "LedgerPosting",
    "LedgerTransaction",
    "Notification",
    "OutboxJob",
    "Partner",
    "PartnerUser",
    "Payout",
    "PayoutBatch",
    "PayoutRun",
    "Program",
    "StaffUser",
]
