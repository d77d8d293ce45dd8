"""Backfill: historic Stripe invoices and refunds pulled through the REST API into the inbox.

Nothing here records events: each fetched object is stored as an inbox item holding a synthetic Stripe
event envelope, so the webhook mapper (stripe_webhooks.py) turns it into events exactly as it would a
delivery. That keeps one way in for facts and makes a backfill safe to overlap with webhooks:

- a paid invoice is stored as `invoice.paid` under `backfill:invoice:{in_…}`; its event's external id is the
  invoice id, as from the webhook, so both give one event (a later-listed invoice that differs in details
  is kept as a duplicate of the first recorded, see `stripe_webhooks._backfill_involved`);
- a refund is stored as `charge.refunded` of its (expanded) charge under
  `backfill:charge.refunded:{ch_…}:{amount_refunded}`: the mapper records only what the cumulative
  `amount_refunded` adds to what is already recorded, whichever of webhook and backfill came first.

Each page is stored in its own transaction, so an interrupted run keeps what it stored and a second run
stores only what is new (the inbox is unique on (source, external_id)).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit import service as audit
from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox.models import InboxItem, InboxStatus, ProviderPayment
from partnerpay.inbox.processing import process_item
from partnerpay.inbox.service import receive, source_of
from partnerpay.integrations.settings_store import get_integration
from partnerpay.integrations.stripe_client import DEFAULT_BASE_URL, StripeApiError, StripeClient
from partnerpay.integrations.stripe_webhooks import BACKFILL_PREFIX, PROVIDER, backfill_invoice_id
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.programs.service import get_program

INVOICES = "/v1/invoices"
REFUNDS = "/v1/refunds"

ClientFactory = Callable[[str, str], StripeClient]  # (api_key, base_url) -> client


def default_client(api_key: str, base_url: str) -> StripeClient:
    return StripeClient(api_key, base_url=base_url)


@dataclass
class BackfillReport:
    """What a run did; `progress` receives it after every page."""

    program_id: str
    stage: str = "invoices"  # invoices, refunds, processing, done
    pages: int = 0
    invoices_seen: int = 0
    invoices_stored: int = 0
    invoices_known: int = 0  # stored by an earlier run
    refunds_seen: int = 0
    refunds_stored: int = 0
    refunds_known: int = 0  # stored earlier, or another refund of the same charge in this run
    refunds_skipped: int = 0  # no expanded charge, or nothing refunded on it any more
    to_process: int = 0
    processed: dict[str, int] = field(default_factory=dict)  # inbox status after inline processing → count

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "invoices_seen": self.invoices_seen,
            "invoices_stored": self.invoices_stored,
            "invoices_known": self.invoices_known,
            "refunds_seen": self.refunds_seen,
            "refunds_stored": self.refunds_stored,
            "refunds_known": self.refunds_known,
            "refunds_skipped": self.refunds_skipped,
            "processed": dict(sorted(self.processed.items())),
        }


@dataclass(frozen=True)
class _Credentials:
    integration_id: str
    api_key: str
    base_url: str


def _credentials(session: Session, *, actor: Actor, box: SecretBox, program_id: str) -> _Credentials:
    program = get_program(session, actor, program_id)
    row = get_integration(session, program.id, PROVIDER)
    api_key = box.decrypt(row.sealed).get("api_key") if row is not None else None
    if row is None or not isinstance(api_key, str) or not api_key:
        raise ValidationError(
            f"program {program.id} has no Stripe api_key; set one first "
            f"(PUT /api/v1/programs/{program.id}/integrations/stripe with {{'api_key': 'sk_…'}})",
            field="api_key",
        )
    base_url = row.config.get("base_url")
    return _Credentials(row.id, api_key, base_url if isinstance(base_url, str) and base_url else DEFAULT_BASE_URL)


def _window(since: datetime | None, until: datetime | None) -> dict[str, str | int]:
    if since is not None and until is not None and since >= until:
        raise ValidationError("since must be before until", field="since")
    window: dict[str, str | int] = {}
    if since is not None:
        window["created[gte]"] = int(since.timestamp())
    if until is not None:
        window["created[lt]"] = int(until.timestamp())
    return window


def _envelope(event_id: str, kind: str, created: Any, obj: dict[str, Any]) -> str:
    # Shaped as Stripe's event (PROVIDERS.md §1) so the webhook mapper reads it unchanged.
    envelope = {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": created if isinstance(created, int) else None,
        "data": {"object": obj},
        "livemode": obj.get("livemode"),
        "partnerpay_backfill": True,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True)


def _store(
    session: Session, *, program_id: str, external_id: str, kind: str, body: str, now: datetime
) -> tuple[str | None, bool]:
    """(the id of an item still to process or None, whether it was stored now)."""
    item, created = receive(
        session,
        program_id=program_id,
        provider=PROVIDER,
        external_id=external_id,
        kind=kind,
        body=body,
        headers={},
        now=now,
    )
    return (item.id if item.status == InboxStatus.RECEIVED.value else None), created


def _store_invoices(
    session: Session, program_id: str, page: list[dict[str, Any]], report: BackfillReport, now: datetime
) -> list[str]:
    pending: list[str] = []
    for invoice in page:
        invoice_id = invoice.get("id")
        if not isinstance(invoice_id, str) or not invoice_id:
            raise StripeApiError("Stripe listed an invoice without an id", field="data.id")
        report.invoices_seen += 1
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or invoice.get("created")
        external_id = backfill_invoice_id(invoice_id)
        body = _envelope(external_id, "invoice.paid", paid_at, invoice)
        item_id, created = _store(
            session, program_id=program_id, external_id=external_id, kind="invoice.paid", body=body, now=now
        )
        report.invoices_stored += created
        report.invoices_known += not created
        pending += [item_id] if item_id else []
    return pending


def _store_refunds(
    session: Session, program_id: str, page: list[dict[str, Any]], report: BackfillReport, now: datetime
) -> list[str]:
    pending: list[str] = []
    for refund in page:
        report.refunds_seen += 1
        charge = refund.get("charge")
        refunded = charge.get("amount_refunded") if isinstance(charge, dict) else None
        charge_id = charge.get("id") if isinstance(charge, dict) else None
        # A refund without a charge (a customer balance refund, say) has nothing the mapper can reverse;
        # a charge with nothing refunded any more had only failed or canceled refunds.
        if not isinstance(charge, dict) or not isinstance(charge_id, str) or not isinstance(refunded, int):
            report.refunds_skipped += 1
            continue
        if refunded <= 0:
            report.refunds_skipped += 1
            continue
        # Keyed by the cumulative amount: all refunds of a charge listed together are one item, and a
        # later refund of the same charge (a new cumulative amount) is a new one.
        external_id = f"{BACKFILL_PREFIX}charge.refunded:{charge_id}:{refunded}"
        body = _envelope(external_id, "charge.refunded", refund.get("created"), charge)
        item_id, created = _store(
            session, program_id=program_id, external_id=external_id, kind="charge.refunded", body=body, now=now
        )
        report.refunds_stored += created
        report.refunds_known += not created
        pending += [item_id] if item_id else []
    return pending


def _fetch(
    factory: sessionmaker[Session],
    client: StripeClient,
    *,
    window: dict[str, str | int],
    report: BackfillReport,
    now: datetime,
    progress: Callable[[BackfillReport], None],
) -> list[str]:
    """Store every page, one transaction each; returns the ids of the items still to process, in order
    (invoices first, so the refunds find the payment they reverse)."""
    pending: list[str] = []
    program_id = report.program_id
    for page in client.pages(INVOICES, {"status": "paid", **window}):
        with unit_of_work(factory) as session:
            pending += _store_invoices(session, program_id, page, report, now)
        report.pages += 1
        progress(report)
    report.stage = "refunds"
    progress(report)
    for page in client.pages(REFUNDS, {**window, "expand[]": ["data.charge"]}):
        with unit_of_work(factory) as session:
            pending += _store_refunds(session, program_id, page, report, now)
        report.pages += 1
        progress(report)
    return pending


def _woken(session: Session, program_id: str) -> list[str]:
    """The program's Stripe items still to process besides the run's own: queued ones, and waiting ones whose
    payment is now known (refunds delivered by webhook that waited for an invoice this run stored)."""
    known = select(ProviderPayment.id).where(
        ProviderPayment.program_id == program_id,
        ProviderPayment.provider == PROVIDER,
        or_(
            ProviderPayment.payment_id == InboxItem.waiting_for,
            ProviderPayment.charge_id == InboxItem.waiting_for,
            ProviderPayment.payment_intent_id == InboxItem.waiting_for,
        ),
    )
    stmt = (
        select(InboxItem.id)
        .where(
            InboxItem.source == source_of(PROVIDER, program_id),
            or_(
                InboxItem.status == InboxStatus.RECEIVED.value,
                and_(InboxItem.status == InboxStatus.WAITING.value, known.exists()),
            ),
        )
        .order_by(InboxItem.received_at, InboxItem.id)
    )
    return list(session.scalars(stmt).all())


def _process(
    factory: sessionmaker[Session],
    pending: list[str],
    *,
    report: BackfillReport,
    now: datetime,
    progress: Callable[[BackfillReport], None],
) -> None:
    """Process each item in its own transaction (invoices first, so refunds find their payment), then what
    that woke, so a one-off backfill needs no worker. The queued jobs later find these items done."""
    counts: Counter[str] = Counter()

    def run(ids: list[str]) -> None:
        for item_id in ids:
            with unit_of_work(factory) as session:
                counts[process_item(session, item_id=item_id, now=now).status] += 1
            report.processed = dict(counts)
            progress(report)

    pending = list(dict.fromkeys(pending))  # two refunds of one charge name the same item
    report.stage, report.to_process = "processing", len(pending)
    progress(report)
    run(pending)
    with factory() as session:
        mine = set(pending)
        woken = [i for i in _woken(session, report.program_id) if i not in mine]
    report.to_process += len(woken)
    run(woken)


def backfill(
    session_factory: sessionmaker[Session],
    *,
    program_id: str,
    box: SecretBox,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    process: bool = False,
    actor: Actor = SYSTEM,
    client: ClientFactory = default_client,
    progress: Callable[[BackfillReport], None] | None = None,
) -> BackfillReport:
    """Store the program's paid invoices and refunds created in [since, until) as inbox items; with
    `process`, also turn them into events now. One `stripe.backfill` audit row per run, failed runs too."""
    window = _window(since, until)
    with session_factory() as session:
        creds = _credentials(session, actor=actor, box=box, program_id=program_id)
    report = BackfillReport(program_id=program_id)
    tell = progress or (lambda _report: None)
    error: str | None = None
    try:
        with client(creds.api_key, creds.base_url) as stripe:
            pending = _fetch(session_factory, stripe, window=window, report=report, now=now, progress=tell)
        if process:
            _process(session_factory, pending, report=report, now=now, progress=tell)
        report.stage = "done"
    except BaseException as exc:  # Ctrl-C too
        # The pages stored before the failure stay (a second run resumes); the audit row says how far it got.
        error = f"{exc.code}: {exc.message}" if isinstance(exc, PartnerpayError) else type(exc).__name__
        raise
    finally:
        with unit_of_work(session_factory) as session:
            audit.record(
                session,
                actor=actor,
                action="stripe.backfill",
                object_type="program_integration",
                object_id=creds.integration_id,
                program_id=program_id,
                now=now,
                after={
                    "since": since.isoformat() if since else None,
                    "until": until.isoformat() if until else None,
                    "process": process,
                    **report.as_dict(),
                    "error": error[:300] if error else None,
                },
            )
    return report
