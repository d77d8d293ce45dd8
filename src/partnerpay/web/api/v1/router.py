"""All v1 routes under /api/v1."""

from fastapi import APIRouter

from partnerpay.web.api.v1 import (
    adjustments,
    approval_policy,
    audit,
    calendar,
    commissions,
    coupons,
    customers,
    deals,
    disputes,
    events,
    events_import,
    fraud,
    funding_account,
    fx,
    hubspot,
    imports,
    integrations,
    ledger,
    links,
    messages,
    onboarding,
    partner_admin,
    payout_details,
    payout_reconcile,
    payout_schedules,
    payouts,
    plans,
    plans_simulate,
    programs,
    recalculate,
    reports,
    stats,
    tax,
    webhook_subscriptions,
    webhooks,
    webhooks_hubspot,
    webhooks_shopify,
)
from partnerpay.web.api.v1 import alerts as alerts_routes
from partnerpay.web.api.v1 import statements as statements_routes

api = APIRouter(prefix="/api/v1")
# partner_admin and imports come before programs so /partners/import and /partners/export win over /partners/{id}.
api.include_router(events_import.router)  # before events: /events/import is not an event's route
api.include_router(adjustments.router)  # before commissions: /commissions/adjustments is not a line's route
for module in (partner_admin, imports, programs, onboarding, payout_details, events, commissions, payouts, ledger):
    api.include_router(module.router)
api.include_router(stats.router)
api.include_router(deals.router)
api.include_router(coupons.router)
api.include_router(fraud.router)
api.include_router(links.router)
api.include_router(messages.router)  # threads, attachments, announcements, templates (issue 8 part 3)
api.include_router(webhooks.router)
api.include_router(webhooks_shopify.router)
api.include_router(webhooks_hubspot.router)
api.include_router(hubspot.router)  # POST /deals/{id}/push-to-hubspot
api.include_router(integrations.router)
api.include_router(customers.router)
api.include_router(fx.router)  # /programs/{id}/fx-rates
api.include_router(plans.router)  # commission plans (issue 6)
api.include_router(recalculate.router)  # POST /partners/{id}/recalculate
api.include_router(plans_simulate.router)  # POST /plans/{id}/simulate: the backtest
api.include_router(funding_account.router)  # PUT /programs/{id}/funding-account (issue 7)
api.include_router(payout_reconcile.router)  # bank returns upload, batch tie-out (issue 7 part 6)
api.include_router(approval_policy.router)  # GET/PUT /programs/{id}/approval-policy (issue 7 part 1)
api.include_router(tax.router)  # tax settings, 1099-NEC report and export, self-billing invoices (issue 7 part 8)
api.include_router(payout_schedules.router)  # payout schedule, minimums, gates; partner payout currency (issue 7)
api.include_router(statements_routes.router)  # partner statements PDF/CSV, list, verify (issue 8 part 1)
api.include_router(audit.router)  # GET /audit, /audit/export, /audit/chain (issue 8 part 7)
api.include_router(calendar.router)  # Google Calendar status and sync of a program (issue 8 part 6)
api.include_router(disputes.router)  # disputes, their evidence and resolution (issue 8 part 2)
api.include_router(reports.router)  # dashboards data and the weekly report schedule (issue 8 parts 5, 8)
api.include_router(alerts_routes.router)  # alert rules and alerts (issue 8 part 4)
api.include_router(webhook_subscriptions.router)  # outgoing webhooks and their delivery log (issue 8 part 9)
