"""The staff console: every page needs a staff login (else a redirect to /login)."""

from fastapi import APIRouter

from partnerpay.web.console import alerts as console_alerts
from partnerpay.web.console import (
    approval_policy,
    audit,
    auth,
    calendar_settings,
    commissions,
    commissions_bulk,
    customers,
    dashboard,
    data_quality,
    deals,
    disputes,
    fraud,
    imports,
    inbox,
    jobs,
    messages,
    onboarding,
    partner_disputes,
    partner_pages,
    partners,
    payout_reconcile,
    payout_schedule,
    payouts,
    plan_simulate,
    plans,
    reports,
    tax,
    tracking,
)
from partnerpay.web.console import statements as console_statements
from partnerpay.web.console import webhooks as console_webhooks

router = APIRouter()
router.include_router(commissions_bulk.router)  # before commissions: /commissions/all-matching (issue 7 part 1)
# imports before partner_pages/partners so /partners/import is not taken for a partner id.
for module in (auth, dashboard, imports, partner_pages, partners, commissions, payouts, jobs, onboarding, tracking):
    router.include_router(module.router)
router.include_router(deals.router)
router.include_router(fraud.router)
router.include_router(messages.router)  # Messages, announcements, email templates (issue 8 part 3)
router.include_router(inbox.router)
router.include_router(customers.router)
router.include_router(data_quality.router)
router.include_router(plans.router)
router.include_router(plan_simulate.router)  # the backtest of a plan
router.include_router(payout_reconcile.router)  # bank returns upload of a batch (issue 7 part 6)
router.include_router(approval_policy.router)  # Settings > program > Approvals (issue 7 part 1)
router.include_router(payout_schedule.router)  # Settings > program > Payout schedule (issue 7 part 2)
router.include_router(reports.router)  # Reports: dashboard, weekly report preview and schedule (issue 8)
router.include_router(tax.router)  # 1099-NEC report and sealed export (issue 7 part 8)
router.include_router(console_statements.router)  # a partner's statements and their downloads (issue 8 part 1)
router.include_router(audit.router)  # Audit page and History panels (issue 8 part 7)
router.include_router(calendar_settings.router)  # Settings > Calendar, Google consent callback (issue 8 part 6)
router.include_router(disputes.router)  # disputes queue, case page and resolution (issue 8 part 2)
router.include_router(partner_disputes.router)  # the partner page's Disputes section (issue 8 part 2)
router.include_router(console_alerts.router)  # Alerts: rules, recent alerts, snooze/acknowledge (issue 8 part 4)
router.include_router(console_webhooks.router)  # Outgoing webhooks and their delivery log (issue 8 part 9)
