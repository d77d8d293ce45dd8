"""The outbox job handlers, and the one place that puts them all into a Registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.deals.updates import REMIND_JOB, remind_job
from partnerpay.integrations.smtp import mailer_for
from partnerpay.jobs.registry import JobContext, PermanentJobError, Registry
from partnerpay.kit.ids import new_id
from partnerpay.messaging.email import EMAIL_SEND, email_handler
from partnerpay.messaging.models import Notification
from partnerpay.partners.models import Partner
from partnerpay.settings import Settings

NOTIFY_PARTNER = "notify.partner"


def _text_field(payload: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise PermanentJobError(f"payload field {name!r} must be a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise PermanentJobError(f"payload field {name!r} is longer than {max_length} characters")
    return value


def notify_partner(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Write an in-app notification {partner_id, kind, text}; a rerun of the same job writes nothing."""
    partner_id = _text_field(payload, "partner_id")
    kind = _text_field(payload, "kind", max_length=64)
    text = _text_field(payload, "text")
    # The job id is the idempotency key: the unique constraint on job_id backs this check up.
    if session.scalar(select(Notification.id).where(Notification.job_id == context.job_id)) is not None:
        return
    if session.get(Partner, partner_id) is None:
        raise PermanentJobError(f"partner {partner_id} does not exist")
    session.add(
        Notification(
            id=new_id("ntf"),
            partner_id=partner_id,
            kind=kind,
            text=text,
            job_id=context.job_id,
            created_at=context.now,
        )
    )
    session.flush()


def build_registry(settings: Settings | None = None) -> Registry:
    """Every handler partnerpay has; the worker entry points build this once and pass it in.

    Without settings (tests, tools) email goes to the log instead of an SMTP server.
    """
    registry = Registry()
    registry.register(NOTIFY_PARTNER)(notify_partner)
    base_url = settings.base_url if settings is not None else Settings.model_fields["base_url"].default
    # One-click unsubscribe links (messaging/preferences.py) are signed with the secret key, when there is one.
    unsubscribe_secret = (settings.secret_key.get_secret_value() if settings is not None else "") or None
    registry.add(
        EMAIL_SEND, email_handler(mailer_for(settings), base_url=base_url, unsubscribe_secret=unsubscribe_secret)
    )
    registry.add(REMIND_JOB, remind_job)  # "ask for an update" reminders (deals/updates.py)
    from partnerpay.inbox.processing import PROCESS_JOB, process_job  # here: events import this module
    from partnerpay.integrations.hubspot_push import PUSH_JOB, push_handler

    registry.add(PROCESS_JOB, process_job)  # stored webhook deliveries into events (inbox/processing.py)
    registry.add(PUSH_JOB, push_handler(settings))  # deals pushed to HubSpot (integrations/hubspot_push.py)
    from partnerpay.commissions.recalculate_auto import RECALCULATE_JOB, recalculate_job

    registry.add(RECALCULATE_JOB, recalculate_job)  # lines re-derived after a late event (commissions/recalculate.py)
    from partnerpay.payouts.sending import SEND_JOB, send_handler

    # Pay all (payouts/sending.py): the worker opens the same sealed credentials the web process stored.
    registry.add(SEND_JOB, send_handler(lambda: (settings or Settings()).secret_box()))
    from partnerpay.payouts.scheduled_run import SCHEDULED_RUN_JOB, scheduled_run_job

    registry.add(SCHEDULED_RUN_JOB, scheduled_run_job)  # a program's scheduled payout run (jobs/scheduler.py)
    from partnerpay.approvals.auto import SWEEP_JOB, sweep_job

    registry.add(SWEEP_JOB, sweep_job)  # approval policies: auto-approve, overdue reminders (approvals/auto.py)
    from partnerpay.messaging.line_notices import HOLD_JOB, hold_job

    registry.add(HOLD_JOB, hold_job)  # "on hold until" emails for new lines (messaging/line_notices.py)
    from partnerpay.calendars.google_sync import handlers as google_calendar_handlers

    for kind, handler in google_calendar_handlers(settings):  # consent exchange and event sync (issue 8 part 6)
        registry.add(kind, handler)
    from partnerpay.reports.jobs import ROLLUP_JOB, rollup_job
    from partnerpay.reports.weekly import WEEKLY_JOB, WEEKLY_PARTNER_JOB, weekly_job, weekly_partner_job

    registry.add(ROLLUP_JOB, rollup_job)  # dashboard rollups brought up to date (reports/rollups.py)
    registry.add(WEEKLY_JOB, weekly_job)  # a program's weekly report email (reports/weekly.py)
    registry.add(WEEKLY_PARTNER_JOB, weekly_partner_job)  # its partner version, one job per partner
    from partnerpay.webhooks_out.delivery import handlers as webhook_handlers

    timeout = settings.outgoing_webhook_timeout_seconds if settings is not None else 10.0
    allow_private = settings is not None and settings.outgoing_webhook_allow_private_targets
    # Outgoing webhooks (issue 8 part 9): the worker opens the subscriptions' sealed secrets.
    for kind, handler in webhook_handlers(
        lambda: (settings or Settings()).secret_box(), timeout_seconds=timeout, allow_private_targets=allow_private
    ):
        registry.add(kind, handler)
    from partnerpay.alerts.raising import EVALUATE_JOB, evaluate_job

    registry.add(EVALUATE_JOB, evaluate_job)  # smart alerts, hourly (alerts/raising.py, issue 8 part 4)
    from partnerpay.messaging.attachment_prune import PRUNE_JOB, prune_handler
    from partnerpay.messaging.attachments import AttachmentStore

    # Daily: attachment files no row refers to (an upload that rolled back), once past the grace period.
    registry.add(PRUNE_JOB, prune_handler(lambda: AttachmentStore.from_settings(settings or Settings())))
    from partnerpay.jobs.retention import RETENTION_JOB, retention_handler

    # Daily: done jobs' payloads (weekly report charts among them) cleared after the retention period.
    retention_days = (settings or Settings.model_construct()).outbox_retention_days  # defaults without settings
    registry.add(RETENTION_JOB, retention_handler(retention_days))
    return registry
