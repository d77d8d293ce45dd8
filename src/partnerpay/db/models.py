"""Imports every domain's models so that metadata (and Alembic) sees all tables."""

from partnerpay.alerts import models as alert_models  # noqa: F401  (issue 8 part 4)
from partnerpay.approvals import models as approval_models  # noqa: F401  (its tables join the metadata)
from partnerpay.audit.models import AuditEntry
from partnerpay.auth.models import ApiKey, IdempotencyRecord, StaffUser
from partnerpay.calendars import models as calendar_models  # noqa: F401  (its tables join the metadata)
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.base import Base
from partnerpay.deals.models import Deal, DealActivity, Lead, UpdateRequest
from partnerpay.disputes import models as dispute_models  # noqa: F401  (its tables join the metadata)
from partnerpay.events.models import Customer, Event
from partnerpay.fx import models as fx_models  # noqa: F401  (its tables join the metadata)
from partnerpay.inbox import models as inbox_models  # noqa: F401  (its tables join the metadata)
from partnerpay.jobs import scheduler_models  # noqa: F401  (periodic scheduler slots, issue 7)
from partnerpay.jobs.models import OutboxJob
from partnerpay.ledger.models import LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.messaging.models import Notification
from partnerpay.partners.models import (
    Invitation,
    Partner,
    PartnerActivity,
    PartnerGroup,
    PartnerNote,
    PartnerUser,
    PayoutMethod,
    Prospect,
    TaxProfile,
)
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutRun
from partnerpay.plans.models import Plan, PlanAssignment, PlanVersion
from partnerpay.programs.models import Program, ProgramTerms, TermsAcceptance
from partnerpay.reports import models as report_models  # noqa: F401  (its tables join the metadata)
from partnerpay.statements import models as statement_models  # noqa: F401  (issued statements, issue 8)
from partnerpay.tax import models as tax_models  # noqa: F401  (its tables join the metadata)
from partnerpay.tracking import attribution_models  # noqa: F401  (its tables join the metadata)
from partnerpay.tracking.models import Click, Coupon, ReferralLink
from partnerpay.webhooks_out import models as webhook_out_models  # noqa: F401  (issue 8 part 9)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Click",
    "CommissionLine",
    "Coupon",
    "Customer",
    "Deal",
    "DealActivity",
    "Event",
    "IdempotencyRecord",
    "Invitation",
    "Lead",
    "LedgerAccount",
    "LedgerPosting",
    "LedgerTransaction",
    "Notification",
    "OutboxJob",
    "Partner",
    "PartnerActivity",
    "PartnerGroup",
    "PartnerNote",
    "PartnerUser",
    "Payout",
    "PayoutBatch",
    "PayoutMethod",
    "PayoutRun",
    "Plan",
    "PlanAssignment",
    "PlanVersion",
    "Program",
    "ProgramTerms",
    "Prospect",
    "ReferralLink",
    "StaffUser",
    "TaxProfile",
    "TermsAcceptance",
    "UpdateRequest",
]
