"""The HTTP rails of Pay all: Stripe Connect transfers and PayPal payouts (payouts/sending.py drives them).

Each function works on payouts already in `sending` (or `sent`, for the PayPal poll) under the batch's lock,
with the idempotency key stored when the batch was sent, and records final outcomes through
payouts.reconcile.record_results. A provider that does not answer leaves the payout where it was, with
`last_error`; the next pass asks again with the same key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.integrations.paypal_payouts import (
    FAILED_STATUSES,
    PAID_STATUSES,
    RETURNED_STATUSES,
    PayoutItem,
    PaypalError,
)
from partnerpay.integrations.stripe_connect import StripeTransferError
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.money import to_major_string
from partnerpay.payouts import rails
from partnerpay.payouts.exporters import batch_files as bf
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutStatus
from partnerpay.payouts.notices import notify_outcomes
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import PAYOUTS

STRIPE_PER_RUN = 200  # transfers per pass: progress is committed in steps, a crash repeats at most one step
Crash = Callable[[str], None]


def send_stripe(
    session: Session,
    actor: Actor,
    box: SecretBox,
    batch: PayoutBatch,
    payouts: list[Payout],
    now: datetime,
    clients: rails.ClientFactory,
    crash: Crash,
    counts: dict[str, int],
) -> None:
    creds = rails.credentials(session, box, batch.program_id, "stripe") or rails.Credentials()
    rows = {r.payout_id: r for r in bf.load_rows(session, box, batch, [p.id for p in payouts[:STRIPE_PER_RUN]])}
    results: list[RailResult] = []
    with clients.stripe(creds) as client:
        for p in payouts[:STRIPE_PER_RUN]:
            p.attempts += 1
            destination = rows[p.id].details.get("account_id")
            try:
                transfer = client.create_transfer(
                    amount=p.amount,
                    currency=p.currency,
                    destination=str(destination),
                    idempotency_key=p.idempotency_key or f"partnerpay-payout-{p.id}",
                    transfer_group=batch.id,
                    metadata={"payout_id": p.id, "partner_id": p.partner_id},
                )
            except StripeTransferError as exc:
                if exc.retryable:
                    p.last_error = exc.message
                    counts["stripe_unanswered"] += 1
                else:
                    results.append(RailResult(p.id, "failed", reason=exc.message, at=now))
                continue
            crash("after_provider_call")
            p.sent_at, p.provider_ref, p.last_error = now, transfer.id, None
            results.append(RailResult(p.id, "paid", provider_ref=transfer.id, at=now))
    session.flush()
    record(session, actor, results, now, counts)


def send_paypal(
    session: Session,
    actor: Actor,
    box: SecretBox,
    batch: PayoutBatch,
    payouts: list[Payout],
    now: datetime,
    clients: rails.ClientFactory,
    crash: Crash,
    counts: dict[str, int],
) -> None:
    creds = rails.credentials(session, box, batch.program_id, "paypal") or rails.Credentials()
    rows = {r.payout_id: r for r in bf.load_rows(session, box, batch, [p.id for p in payouts])}
    groups: dict[str, list[Payout]] = defaultdict(list)
    for p in payouts:
        groups[p.idempotency_key or f"{batch.id}-001"].append(p)
    with clients.paypal(creds) as client:
        for sender_batch_id, group in sorted(groups.items()):
            items = [
                PayoutItem(
                    sender_item_id=p.id,
                    receiver=str(rows[p.id].details.get("email")),
                    value=to_major_string(p.amount, p.currency),
                    currency=p.currency,
                    note=f"Commission payout {p.id}",
                )
                for p in group
            ]
            for p in group:
                p.attempts += 1
            try:
                payout_batch_id = client.create_batch(
                    sender_batch_id=sender_batch_id, items=items, email_subject="You have a commission payout"
                )
            except PaypalError as exc:
                if exc.retryable:
                    for p in group:
                        p.last_error = exc.message
                    counts["paypal_unanswered"] += len(group)
                else:
                    record(
                        session,
                        actor,
                        [RailResult(p.id, "failed", reason=exc.message, at=now) for p in group],
                        now,
                        counts,
                    )
                continue
            crash("after_provider_call")
            for p in group:
                p.sent_at, p.provider_ref, p.last_error = now, payout_batch_id, None
            session.flush()
            PAYOUTS.transition(session, Payout, [p.id for p in group], src=PayoutStatus.SENDING, dst=PayoutStatus.SENT)
            notify_outcomes(session, [(p, PayoutStatus.SENT.value, now, None) for p in group], now)
            counts["paypal_sent"] += len(group)
    session.flush()


def poll_paypal(
    session: Session,
    actor: Actor,
    box: SecretBox,
    batch: PayoutBatch,
    payouts: list[Payout],
    now: datetime,
    clients: rails.ClientFactory,
    crash: Crash,
    counts: dict[str, int],
) -> bool:
    """Ask PayPal about every sent item; True while some are still pending."""
    if not payouts:
        return False
    creds = rails.credentials(session, box, batch.program_id, "paypal") or rails.Credentials()
    by_ref: dict[str, list[Payout]] = defaultdict(list)
    for p in payouts:
        by_ref[p.provider_ref or ""].append(p)
    results: list[RailResult] = []
    waiting = False
    with clients.paypal(creds) as client:
        for payout_batch_id, group in sorted(by_ref.items()):
            try:
                _, statuses = client.item_statuses(payout_batch_id)
            except PaypalError as exc:
                for p in group:
                    p.last_error = exc.message
                waiting = True
                continue
            of_item = {s.sender_item_id: s for s in statuses}
            for p in group:
                s = of_item.get(p.id)
                status = s.transaction_status if s is not None else "PENDING"
                reason = f"PayPal: {status}" + (f" ({s.reason})" if s is not None and s.reason else "")
                if status in PAID_STATUSES:
                    ref = s.payout_item_id if s is not None and s.payout_item_id else payout_batch_id
                    results.append(RailResult(p.id, "paid", provider_ref=ref, at=now))
                elif status in FAILED_STATUSES:
                    results.append(RailResult(p.id, "failed", provider_ref=payout_batch_id, reason=reason, at=now))
                elif status in RETURNED_STATUSES:
                    results.append(RailResult(p.id, "returned", provider_ref=payout_batch_id, reason=reason, at=now))
                else:
                    waiting = True
    crash("after_provider_call")
    record(session, actor, results, now, counts)
    return waiting


def record(session: Session, actor: Actor, results: list[RailResult], now: datetime, counts: dict[str, int]) -> None:
    if not results:
        return
    summary = record_results(session, actor=actor, results=results, now=now)
    for name, value in summary.counts().items():
        counts[name] += value
