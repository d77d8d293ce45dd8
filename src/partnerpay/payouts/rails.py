"""The rails a payout goes through, behind one interface, and the payout files they store.

A file rail (csv, wise, paypal_csv, sepa, nacha) produces a file that is stored byte for byte with its
SHA-256 the first time it is made: a re-export returns the stored file, and `partnerpay verify`
(check_files below) ties its control sum and count to the payouts it lists. An HTTP rail (paypal,
stripe_connect) calls the provider; its clients are made by a ClientFactory so tests point them at
local servers.

Which rail pays a payout follows the partner's active payout method: sepa → the SEPA file, ach → the
NACHA file, paypal → the PayPal Payouts API when the program's PayPal integration has credentials
(else the PayPal upload CSV), stripe_connect → a Stripe transfer (needs the program's Stripe api_key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.db.chunks import in_chunks
from partnerpay.integrations.paypal_payouts import DEFAULT_BASE_URL as PAYPAL_URL
from partnerpay.integrations.paypal_payouts import PaypalPayoutsClient
from partnerpay.integrations.settings_store import get_integration
from partnerpay.integrations.stripe_connect import DEFAULT_BASE_URL as STRIPE_URL
from partnerpay.integrations.stripe_connect import StripeConnectClient
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.payouts import funding
from partnerpay.payouts.exporters import batch_files as bf
from partnerpay.payouts.exporters.csv_file import ExportFile
from partnerpay.payouts.exporters.rail_items import ItemProblem, RailFile, refuse_items
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutFile

FILE_RAILS = ("csv", "wise", "paypal_csv", "sepa", "nacha")
HTTP_RAILS = ("paypal", "stripe_connect")
RAIL_OF_METHOD = {"sepa": "sepa", "ach": "nacha", "paypal": "paypal", "stripe_connect": "stripe_connect"}
SEPA_SCHEMAS = ("pain.001.001.03", "pain.001.001.09")


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    base_url: str | None = None


def credentials(session: Session, box: SecretBox, program_id: str, provider: str) -> Credentials | None:
    """The program's stored provider credentials (decrypted), or None when the integration is not set."""
    row = get_integration(session, program_id, provider)
    if row is None:
        return None
    opened = box.decrypt(row.sealed)
    return Credentials(
        api_key=opened.get("api_key"),
        client_id=row.config.get("client_id"),
        client_secret=opened.get("client_secret"),
        base_url=row.config.get("base_url"),
    )


class ClientFactory:
    """Makes provider clients from a program's credentials; tests pass a transport or base URL."""

    def __init__(self, *, timeout: float = 30.0, base_urls: dict[str, str] | None = None) -> None:
        self.timeout = timeout
        self.base_urls = base_urls or {}

    def stripe(self, creds: Credentials) -> StripeConnectClient:
        url = self.base_urls.get("stripe") or creds.base_url or STRIPE_URL
        return StripeConnectClient(creds.api_key or "", base_url=url, timeout=self.timeout)

    def paypal(self, creds: Credentials) -> PaypalPayoutsClient:
        url = self.base_urls.get("paypal") or creds.base_url or PAYPAL_URL
        return PaypalPayoutsClient(creds.client_id or "", creds.client_secret or "", base_url=url, timeout=self.timeout)


def plan_rails(
    session: Session, box: SecretBox, batch: PayoutBatch, rows: Sequence[bf.PayoutRow], *, now: datetime
) -> dict[str, str]:
    """payout id → rail; refused (422, naming every partner) when a payout has no way to be paid, or when
    the partner's payout details changed after the run and are still held for review."""
    paypal = credentials(session, box, batch.program_id, "paypal")
    paypal_api = paypal is not None and bool(paypal.client_id and paypal.client_secret)
    stripe = credentials(session, box, batch.program_id, "stripe")
    problems: list[ItemProblem] = []
    rails: dict[str, str] = {}
    for row in rows:
        if row.review_until is not None and row.review_until > now:
            # Changed details are the classic hijack: never pay a new account before its review is over.
            problems.append(
                ItemProblem(
                    row.payout_id,
                    row.partner_id,
                    row.partner_name,
                    f"payout details changed; held for review until {row.review_until:%d %b %Y %H:%M} UTC",
                )
            )
            continue
        rail = RAIL_OF_METHOD.get(row.method_type or "")
        if rail is None:
            problems.append(ItemProblem(row.payout_id, row.partner_id, row.partner_name, "no payout method on file"))
            continue
        if rail == "paypal" and not paypal_api:
            rail = "paypal_csv"
        if rail == "stripe_connect" and (stripe is None or not stripe.api_key):
            problems.append(
                ItemProblem(
                    row.payout_id,
                    row.partner_id,
                    row.partner_name,
                    "paid by Stripe Connect, but the program's Stripe integration has no api_key",
                )
            )
            continue
        rails[row.payout_id] = rail
    refuse_items("payout batch", problems)
    return rails


def build_file(
    session: Session,
    box: SecretBox,
    batch: PayoutBatch,
    fmt: str,
    rows: Sequence[bf.PayoutRow],
    *,
    created_at: datetime,
    schema: str = "pain.001.001.03",
) -> ExportFile:
    """The file of `rows` in format `fmt` (pure but for reading the funding account)."""
    if fmt == "csv":
        return bf.csv_file(batch, rows)
    if fmt == "wise":
        return bf.wise_file(batch, rows)
    if fmt == "paypal_csv":
        return bf.paypal_csv_file(batch, rows)
    if fmt == "sepa":
        return bf.sepa_batch_file(
            batch, rows, funding.sepa_debtor(session, box, batch.program_id), created_at=created_at, schema=schema
        )
    if fmt == "nacha":
        return bf.nacha_batch_file(
            batch, rows, funding.ach_originator(session, box, batch.program_id), created_at=created_at
        )
    raise ValidationError(f"unknown export format {fmt!r}; available: {', '.join(FILE_RAILS)}", field="format")


def stored_file(session: Session, batch_id: str, fmt: str) -> PayoutFile | None:
    return session.scalar(select(PayoutFile).where(PayoutFile.batch_id == batch_id, PayoutFile.format == fmt))


def stored_files(session: Session, batch_id: str) -> list[PayoutFile]:
    return list(
        session.scalars(select(PayoutFile).where(PayoutFile.batch_id == batch_id).order_by(PayoutFile.created_at))
    )


def store_file(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    batch: PayoutBatch,
    fmt: str,
    rows: Sequence[bf.PayoutRow],
    now: datetime,
    schema: str = "pain.001.001.03",
    made_at: datetime | None = None,
) -> PayoutFile:
    """The batch's file in `fmt` for exactly `rows`: the stored one if it lists the same payouts, else built,
    stored and audited. A stored file listing other payouts is refused rather than silently replaced.
    `made_at` is the time written in the file (default now): Pay all passes the batch's sent_at."""
    if fmt != "csv" and not actor.can("payouts"):
        # Bank files and the Wise/PayPal uploads hold partners' account numbers and emails in clear.
        raise Forbidden(f"the {fmt} file holds partners' payout details: it needs the finance or owner role")
    ids = sorted(r.payout_id for r in rows)
    existing = stored_file(session, batch.id, fmt)
    if existing is not None:
        if sorted(existing.payout_ids) != ids:
            raise ValidationError(
                f"the {fmt} file of batch {batch.id} made on {existing.created_at:%d %b %Y %H:%M} UTC lists "
                f"{existing.item_count} payout(s), not the {len(ids)} to pay by {fmt} now (a payout method "
                "changed since): pay these by hand and record the results",
                field="format",
            )
        return existing
    file = build_file(session, box, batch, fmt, rows, created_at=made_at or now, schema=schema)
    references = [list(r) for r in file.references] if isinstance(file, RailFile) else []
    row = PayoutFile(
        id=new_id("pfl"),
        batch_id=batch.id,
        program_id=batch.program_id,
        format=fmt,
        filename=file.filename,
        media_type=file.media_type,
        content=file.content,
        sha256=hashlib.sha256(file.content.encode()).hexdigest(),
        control_sum=file.control_sum,
        item_count=file.count,
        payout_ids=ids,
        references=references,
        created_by=actor.id,
        created_at=made_at or now,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payout_file.create",
        object_type="payout_file",
        object_id=row.id,
        program_id=batch.program_id,
        now=now,
        after={
            "batch_id": batch.id,
            "format": fmt,
            "filename": row.filename,
            "sha256": row.sha256,
            "control_sum": row.control_sum,
            "count": row.item_count,
        },
    )
    return row


def check_files(session: Session) -> list[str]:
    """`partnerpay verify`: every stored file still hashes to its SHA-256, and its control sum and count
    equal the payouts it lists (which must belong to its batch)."""
    problems = []
    for f in session.scalars(select(PayoutFile).order_by(PayoutFile.created_at, PayoutFile.id)):
        if hashlib.sha256(f.content.encode()).hexdigest() != f.sha256:
            problems.append(f"payout file {f.id} ({f.format}, batch {f.batch_id}): content does not match its SHA-256")
        total, count = 0, 0
        for chunk in in_chunks(f.payout_ids, 1000):
            got = session.execute(
                select(func.coalesce(func.sum(Payout.amount), 0), func.count()).where(
                    Payout.id.in_(chunk), Payout.batch_id == f.batch_id
                )
            ).one()
            total, count = total + int(got[0]), count + int(got[1])
        if (total, count) != (f.control_sum, f.item_count) or count != len(f.payout_ids):
            problems.append(
                f"payout file {f.id} ({f.format}, batch {f.batch_id}): control sum {f.control_sum} over "
                f"{f.item_count} item(s), but its payouts add up to {total} over {count}"
            )
    return problems


def file_summary(f: PayoutFile) -> dict[str, Any]:
    return {
        "id": f.id,
        "format": f.format,
        "filename": f.filename,
        "sha256": f.sha256,
        "control_sum": f.control_sum,
        "count": f.item_count,
        "created_at": f.created_at.isoformat(),
    }


Crash = Callable[[str], None]
