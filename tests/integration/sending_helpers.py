"""A program with partners on each rail and an approved batch, and a worker whose Pay all job talks to
local fakes (tests/integration/payout_rail_fakes.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.integrations.settings_store import put_integration
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.registry import Registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.partners.models import PayoutMethod
from partnerpay.partners.payout_details import set_payout_method
from partnerpay.payouts import rails
from partnerpay.payouts.funding import put_funding_account
from partnerpay.payouts.models import Payout, PayoutBatch
from partnerpay.payouts.run import create_payout_run
from partnerpay.payouts.sending import SEND_JOB, send_handler
from partnerpay.payouts.service import approve_batch
from tests import factories

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
BOX = SecretBox("test-secret-key-for-sending-" + "x" * 20)
SEPA_FUNDING = {"name": "Acme Software GmbH", "iban": "DE89 3704 0044 0532 0130 00"}
ACH_FUNDING = {
    "company_name": "Acme Software",
    "company_id": "1234567890",
    "odfi_routing": "111000025",
    "immediate_destination": "021000021",
    "immediate_origin": "1234567890",
}
METHODS: dict[str, dict[str, Any]] = {
    "sepa": {"type": "sepa", "iban": "NL91ABNA0417164300", "account_holder": "Jansen Media BV"},
    "sepa2": {"type": "sepa", "iban": "FR1420041010050500013M02606", "account_holder": "Élodie Café SARL"},
    "ach": {
        "type": "ach",
        "routing_number": "111000025",
        "account_number": "000123456789",
        "account_type": "checking",
        "account_holder": "Pat Smith",
    },
    "ach_home": {
        "type": "ach",
        "routing_number": "021000021",
        "account_number": "987654321",
        "account_type": "savings",
        "account_holder": "Lee Chen",
        "address_line1": "1 Main Street",
        "address_city": "Springfield",
        "address_state": "il",
        "address_postcode": "62704-1234",
    },
    "paypal": {"type": "paypal", "email": "pay@partner.example"},
    "paypal2": {"type": "paypal", "email": "second@partner.example"},
    "stripe": {"type": "stripe_connect", "account_id": "acct_1Nv0FGQ9RKHgCVdK"},
    "stripe2": {"type": "stripe_connect", "account_id": "acct_2Zz0FGQ9RKHgCVdQ"},
}


@dataclass
class Setup:
    program_id: str
    batch_id: str
    payouts: dict[str, str]  # partner name → payout id


def approved_batch(
    session: Session,
    clock: FixedClock,
    kinds: list[str],
    *,
    currency: str = "EUR",
    approve: bool = True,
    stripe_key: bool = True,
    paypal_keys: bool = True,
    box: SecretBox = BOX,
    names: dict[str, str] | None = None,
) -> Setup:
    """Partners named after METHODS keys, each with one line of 100.00 times (n+1) commission base."""
    t0 = clock.now() - timedelta(days=60)
    prog = factories.program(session, t0, currency=currency)
    ids = []
    named = {}
    for n, kind in enumerate(kinds):
        partner = factories.partner(session, prog, t0, (names or {}).get(kind, kind.capitalize()))
        named[partner.id] = kind
        if kind in METHODS:
            set_payout_method(session, actor=SYSTEM, box=box, partner_id=partner.id, data=METHODS[kind], now=t0)
        lines = factories.event(
            session,
            prog,
            t0,
            external_id=f"inv-{kind}",
            customer=f"c-{kind}",
            amount=10_000 * (n + 1),
            partner_id=partner.id,
        )
        ids += [line.id for line in lines]
    for method in session.scalars(select(PayoutMethod)):
        method.verified = True
    approve_lines(session, actor=SYSTEM, ids=ids, now=t0)
    put_funding_account(
        session, actor=SYSTEM, box=box, program_id=prog.id, body={"sepa": SEPA_FUNDING, "ach": ACH_FUNDING}, now=t0
    )
    if stripe_key:
        put_integration(
            session,
            actor=SYSTEM,
            box=box,
            program_id=prog.id,
            provider="stripe",
            body={"api_key": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"},
            now=t0,
        )
    if paypal_keys:
        put_integration(
            session,
            actor=SYSTEM,
            box=box,
            program_id=prog.id,
            provider="paypal",
            body={"client_id": "AcmeClient", "client_secret": "AcmeSecret"},
            now=t0,
        )
    result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
    assert result.batch is not None, result.skipped
    if approve:
        approve_batch(session, actor=SYSTEM, batch_id=result.batch.id, now=clock.now())
    session.commit()
    payouts = {
        named[p.partner_id]: p.id for p in session.scalars(select(Payout).where(Payout.batch_id == result.batch.id))
    }
    setup = Setup(prog.id, result.batch.id, payouts)
    session.rollback()  # SQLite: release the write lock the reads above took, for the app and the worker
    return setup


def worker(
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    *,
    stripe_url: str = "",
    paypal_url: str = "",
    crash: Callable[[str], None] | None = None,
    timeout: float = 1.0,
    box: SecretBox = BOX,
) -> Worker:
    """The real registry, with the Pay all job's clients pointed at the fakes and an optional crash hook."""
    base = build_registry()
    registry = Registry()
    for kind in base:
        if kind != SEND_JOB:
            registry.add(kind, base.get(kind))
    urls = {k: v for k, v in (("stripe", stripe_url), ("paypal", paypal_url)) if v}
    clients = rails.ClientFactory(timeout=timeout, base_urls=urls)
    registry.add(SEND_JOB, send_handler(lambda: box, clients, crash or (lambda point: None)))
    return Worker(session_factory, registry, clock=clock, lease_seconds=60)


def statuses(session: Session, batch_id: str) -> dict[str, str]:
    session.expire_all()
    rows = session.execute(select(Payout.id, Payout.status).where(Payout.batch_id == batch_id)).all()
    session.rollback()  # on SQLite an open transaction holds the write lock the worker needs
    return {pid: status for pid, status in rows}


def batch_status(session: Session, batch_id: str) -> str:
    session.expire_all()
    batch = session.get(PayoutBatch, batch_id)
    assert batch is not None
    status = batch.status
    session.rollback()
    return status


def drain(session: Session, run: Worker) -> int:
    """Run every due job, the test's own transaction ended first (SQLite: one writer at a time)."""
    session.rollback()
    return run.run_pending()
