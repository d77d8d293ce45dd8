"""Pay all: finance sends an approved batch; an outbox job does the provider work, restartably.

`start_send` (the request) checks that every payout has a way to be paid and that every file can be
built, then in one transaction moves the batch and its payouts to `sending`, fixes each payout's rail
and provider idempotency key, and enqueues `payouts.send`. Nothing is sent inside the request.

`run_send` (the job) works through what is still open, each step written as it completes:
- file rails: the file is built and stored (payouts/rails.py), its payouts become `sent`;
- HTTP rails (payouts/http_rails.py):
  Stripe Connect: one transfer per payout with `Idempotency-Key: <payout's key>`; created → paid;
  refused → failed with Stripe's reason; no answer (timeout, 5xx) → stays `sending` with last_error;
  PayPal: one payout batch per 15,000 items, `sender_batch_id` = the stored key; created → `sent`;
  then polled: SUCCESS → paid, FAILED/BLOCKED/... → failed, RETURNED/REFUNDED/... → returned.
Results go through payouts.reconcile.record_results (ledger, lines, batch settlement, partner notices).
A crash anywhere rolls back the job's transaction; the re-run asks the provider again with the same keys,
and the provider answers with what it did the first time, so no payout is paid twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.integrations.paypal_payouts import MAX_ITEMS
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import Handler, JobContext, PermanentJobError
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden
from partnerpay.payouts import http_rails, rails
from partnerpay.payouts.exporters import batch_files as bf
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutStatus
from partnerpay.payouts.notices import notify_outcomes
from partnerpay.payouts.service import BATCHES, PAYOUTS, get_batch

SEND_JOB = "payouts.send"
POLL_AFTER = timedelta(minutes=10)  # PayPal items still pending are asked about again after this
MAX_TRANSIENT = 12  # unanswered attempts of one payout before its retries slow to every six hours
Crash = Callable[[str], None]


def _no_crash(point: str) -> None:
    return None


def start_send(session: Session, *, actor: Actor, box: SecretBox, batch_id: str, now: datetime) -> PayoutBatch:
    """Pay all: refuse (422, naming every partner) unless every payout can go out, then hand over to the job."""
    if actor.partner_id is not None or not actor.can("payouts"):
        raise Forbidden("sending a payout batch needs the finance or owner role (scope 'payouts')")
    batch = get_batch(session, actor, batch_id)
    BATCHES.check(BatchStatus(batch.status), BatchStatus.SENDING, object_id=batch.id)
    rows = bf.load_rows(session, box, batch)
    plan = rails.plan_rails(session, box, batch, rows, now=now)
    by_rail: dict[str, list[bf.PayoutRow]] = defaultdict(list)
    for row in rows:
        by_rail[plan[row.payout_id]].append(row)
    for rail, group in by_rail.items():
        if rail in rails.FILE_RAILS:
            # Built now only to refuse a bad IBAN or a missing funding account before anything moves;
            # the job builds and stores the file (same inputs, the batch's sent_at as its time).
            existing = rails.stored_file(session, batch.id, rail)
            if existing is None:
                rails.build_file(session, box, batch, rail, group, created_at=now)
    BATCHES.transition(
        session,
        PayoutBatch,
        [batch.id],
        src=BatchStatus.APPROVED,
        dst=BatchStatus.SENDING,
        values={"sent_at": now, "sent_by": actor.id},
    )
    PAYOUTS.transition(
        session, Payout, [r.payout_id for r in rows], src=PayoutStatus.APPROVED, dst=PayoutStatus.SENDING
    )
    # One executemany by primary key, not a statement per payout: a batch may hold 100k payouts.
    keyed = [
        {"id": row.payout_id, "rail": rail, "idempotency_key": _key(batch.id, rail, row.payout_id, index)}
        for rail, group in by_rail.items()
        for index, row in enumerate(group)
    ]
    if keyed:
        session.execute(update(Payout).execution_options(synchronize_session=False), keyed)
    session.refresh(batch)
    audit.record(
        session,
        actor=actor,
        action="payout_batch.send",
        object_type="payout_batch",
        object_id=batch.id,
        program_id=batch.program_id,
        now=now,
        before={"status": BatchStatus.APPROVED.value},
        after={
            "status": batch.status,
            "total": batch.total,
            "currency": batch.currency,
            "rails": {rail: len(group) for rail, group in sorted(by_rail.items())},
        },
    )
    enqueue(session, SEND_JOB, [{"batch_id": batch.id, "by": actor.id, "by_label": actor.label or actor.id}], now=now)
    return batch


def _key(batch_id: str, rail: str, payout_id: str, index: int) -> str | None:
    """The provider idempotency key, fixed when the batch is sent: a re-run sends the same one."""
    if rail == "stripe_connect":
        return f"partnerpay-payout-{payout_id}"
    if rail == "paypal":
        return f"{batch_id}-{index // MAX_ITEMS + 1:03d}"  # sender_batch_id: one per 15,000 items
    return None


def _actor(batch: PayoutBatch, payload: dict[str, Any]) -> Actor:
    label = str(payload.get("by_label") or payload.get("by") or "finance")
    return Actor(
        ActorType.SYSTEM,
        f"job:{SEND_JOB}",
        frozenset({"read", "write", "payouts"}),
        program_id=batch.program_id,
        label=f"Pay all by {label}"[:320],
    )


def run_send(
    session: Session,
    *,
    box: SecretBox,
    batch_id: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    clients: rails.ClientFactory | None = None,
    crash: Crash = _no_crash,
) -> dict[str, int]:
    """One pass of the send job over what is still open; re-enqueues itself while work remains."""
    batch = session.get(PayoutBatch, batch_id, with_for_update=True)
    if batch is None:
        raise PermanentJobError(f"payout batch {batch_id} does not exist")
    crash("after_batch_marked_sending")
    actor = _actor(batch, payload or {})
    clients = clients or rails.ClientFactory()
    counts: dict[str, int] = defaultdict(int)
    open_payouts = list(
        session.scalars(
            select(Payout)
            .where(
                Payout.batch_id == batch.id, Payout.status.in_([PayoutStatus.SENDING.value, PayoutStatus.SENT.value])
            )
            .order_by(Payout.id)
        )
    )
    sending = [p for p in open_payouts if p.status == PayoutStatus.SENDING.value]
    by_rail: dict[str, list[Payout]] = defaultdict(list)
    for p in sending:
        by_rail[p.rail or ""].append(p)
    for rail in rails.FILE_RAILS:
        if by_rail.get(rail):
            _send_file(session, actor, box, batch, rail, by_rail[rail], now, crash)
            counts[f"{rail}_sent"] += len(by_rail[rail])
    if by_rail.get("stripe_connect"):
        http_rails.send_stripe(session, actor, box, batch, by_rail["stripe_connect"], now, clients, crash, counts)
    if by_rail.get("paypal"):
        http_rails.send_paypal(session, actor, box, batch, by_rail["paypal"], now, clients, crash, counts)
    sent_paypal = [p for p in open_payouts if p.status == PayoutStatus.SENT.value and p.rail == "paypal"]
    waiting = http_rails.poll_paypal(session, actor, box, batch, sent_paypal, now, clients, crash, counts)
    _finish_batch(session, batch)
    _next_pass(session, batch, payload, sending, now, counts, waiting=waiting)
    return dict(counts)


def _next_pass(
    session: Session,
    batch: PayoutBatch,
    payload: dict[str, Any] | None,
    sending: list[Payout],
    now: datetime,
    counts: dict[str, int],
    *,
    waiting: bool,
) -> None:
    """Queue the next pass: at once while transfers are left over (STRIPE_PER_RUN), after a growing pause
    while a provider has not answered, after POLL_AFTER while PayPal items are pending."""
    more = sum(1 for p in sending if p.rail == "stripe_connect") > http_rails.STRIPE_PER_RUN
    unanswered = counts["stripe_unanswered"] + counts["paypal_unanswered"] > 0
    attempts = max((p.attempts for p in sending), default=0)
    if more:
        delay = timedelta(0)
    elif unanswered and attempts < MAX_TRANSIENT:
        delay = timedelta(seconds=min(30 * 2 ** min(attempts, 8), 3600))
    elif waiting or unanswered:
        # Past MAX_TRANSIENT the unanswered payouts stay sending (shown with their error) but are still
        # asked about, slowly: their money may have left, so they must never be marked failed by a guess.
        delay = POLL_AFTER if waiting else timedelta(hours=6)
    else:
        return
    enqueue(session, SEND_JOB, [payload or {"batch_id": batch.id}], now=now, run_after=now + delay)


def _send_file(
    session: Session,
    actor: Actor,
    box: SecretBox,
    batch: PayoutBatch,
    rail: str,
    payouts: list[Payout],
    now: datetime,
    crash: Crash,
) -> None:
    rows = bf.load_rows(session, box, batch, [p.id for p in payouts])
    # The batch's sent_at is the file's time: a re-run after a crash builds the very same bytes.
    file = rails.store_file(
        session, actor=actor, box=box, batch=batch, fmt=rail, rows=rows, now=now, made_at=batch.sent_at
    )
    crash("after_file_written")
    refs = {pid: ref for pid, ref in file.references}
    for p in payouts:
        p.sent_at = now
        p.attempts += 1
        p.provider_ref = refs.get(p.id, file.id)
    session.flush()
    PAYOUTS.transition(session, Payout, [p.id for p in payouts], src=PayoutStatus.SENDING, dst=PayoutStatus.SENT)
    notify_outcomes(session, [(p, PayoutStatus.SENT.value, now, None) for p in payouts], now)


def _finish_batch(session: Session, batch: PayoutBatch) -> None:
    """Every payout is out of `sending`: the batch is sent (reconciliation settles it as paid later)."""
    session.refresh(batch)
    if batch.status != BatchStatus.SENDING.value:
        return
    still = session.scalar(
        select(Payout.id).where(Payout.batch_id == batch.id, Payout.status == PayoutStatus.SENDING.value).limit(1)
    )
    if still is None:
        BATCHES.transition(session, PayoutBatch, [batch.id], src=BatchStatus.SENDING, dst=BatchStatus.SENT)


def send_handler(
    box_of: Callable[[], SecretBox], clients: rails.ClientFactory | None = None, crash: Crash = _no_crash
) -> Handler:
    """The outbox handler of payouts.send {batch_id}."""

    def run(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        batch_id = payload.get("batch_id")
        if not isinstance(batch_id, str):
            raise PermanentJobError(f"payload batch_id must be a string, got {batch_id!r}")
        run_send(
            session, box=box_of(), batch_id=batch_id, now=context.now, payload=payload, clients=clients, crash=crash
        )

    return run
