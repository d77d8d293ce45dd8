"""A payout batch as a file: csv, wise, paypal_csv, sepa or nacha, from the batch's payouts and the
partners' decrypted payout methods (and, for bank files, the program's funding account).

Every payout that cannot go in the chosen format (no payout method, the wrong kind, a bad IBAN, another
currency...) is collected first and the whole file refused with one 422 naming each partner: finance
fixes them all before trying again, and no half file is ever produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.db.chunks import in_chunks
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.csvsafe import escape_cell, write_csv
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import to_major_string
from partnerpay.partners.bank_address import FIELDS as ADDRESS_FIELDS
from partnerpay.partners.bank_address import address_of
from partnerpay.partners.models import Partner, PayoutMethod
from partnerpay.payouts.exporters.ach_calendar import next_banking_day
from partnerpay.payouts.exporters.csv_file import HEADER as CSV_HEADER
from partnerpay.payouts.exporters.csv_file import ExportFile
from partnerpay.payouts.exporters.nacha import nacha_file
from partnerpay.payouts.exporters.rail_items import (
    AchItem,
    AchOriginator,
    ItemProblem,
    RailFile,
    SepaDebtor,
    SepaItem,
    refuse_items,
    sec_code_for,
)
from partnerpay.payouts.exporters.sepa import sepa_file, sepa_id
from partnerpay.payouts.models import Payout, PayoutBatch

FORMATS = ("csv", "wise", "paypal_csv", "sepa", "nacha")
PAYPAL_CSV_MAX_ROWS = 5_000  # PayPal Payouts Web takes at most 5,000 rows per file
# Wise "send to bank accounts" template: one row per transfer; amountCurrency=target pays the exact amount;
# receiverType is PERSON or INSTITUTION (as Wise's own templates and exported batches spell them).
WISE_HEADER = (
    "name",
    "recipientEmail",
    "paymentReference",
    "receiverType",
    "amountCurrency",
    "amount",
    "sourceCurrency",
    "targetCurrency",
    "IBAN",
    "BIC",
    "accountNumber",
    "abartn",
    "accountType",
    # The holder's address, which Wise needs for some currencies (ADDRESS_*_CURRENCIES); blank elsewhere.
    "addressCountryCode",
    "addressCity",
    "addressFirstLine",
    "addressState",
    "addressPostCode",
)
# "Recipient address data is required only if target currency is USD, PHP, THB or TRY, or if the source
# currency is USD or AUD" (docs.wise.com, create a recipient account).
ADDRESS_TARGET_CURRENCIES = frozenset({"USD", "PHP", "THB", "TRY"})
ADDRESS_SOURCE_CURRENCIES = frozenset({"USD", "AUD"})
ACH_ZONE = ZoneInfo("America/New_York")  # US banks read the file header's date and time as Eastern


@dataclass(frozen=True, slots=True)
class PayoutRow:
    """One payout with what a file needs of its partner; `details` are the clear payout method fields."""

    payout_id: str
    partner_id: str
    partner_name: str
    partner_email: str
    is_company: bool
    amount: int
    currency: str
    method_type: str | None
    details: dict[str, Any]
    review_until: datetime | None = None  # the partner's payout details changed: held for review until then

    @property
    def holder(self) -> str:
        return str(self.details.get("account_holder") or self.partner_name)


def load_rows(
    session: Session, box: SecretBox, batch: PayoutBatch, payout_ids: Sequence[str] | None = None
) -> list[PayoutRow]:
    """The batch's payouts (or the given ones), ordered by payout id, with decrypted active payout methods."""
    stmt = (
        select(Payout, Partner)
        .join(Partner, Partner.id == Payout.partner_id)
        .where(Payout.batch_id == batch.id)
        .order_by(Payout.id)
    )
    pairs = [(p, partner) for p, partner in session.execute(stmt).all() if payout_ids is None or p.id in payout_ids]
    methods: dict[str, PayoutMethod] = {}
    partner_ids = [partner.id for _, partner in pairs]
    for chunk in in_chunks(partner_ids, 1000):
        for method in session.scalars(
            select(PayoutMethod)
            .where(PayoutMethod.partner_id.in_(chunk), PayoutMethod.active.is_(True))
            .order_by(PayoutMethod.created_at, PayoutMethod.id)
        ):
            methods[method.partner_id] = method  # the newest active one wins, as in active_payout_method
    rows = []
    for payout, partner in pairs:
        found = methods.get(partner.id)
        rows.append(
            PayoutRow(
                payout_id=payout.id,
                partner_id=partner.id,
                partner_name=partner.legal_name or partner.name,
                partner_email=partner.email,
                is_company=bool(partner.company),
                amount=payout.amount,
                currency=payout.currency,
                method_type=found.type if found is not None else None,
                details=box.decrypt(found.details_encrypted) if found is not None else {},
                review_until=partner.payout_review_until,
            )
        )
    return rows


def _problem(row: PayoutRow, reason: str) -> ItemProblem:
    return ItemProblem(row.payout_id, row.partner_id, row.partner_name, reason)


def _need(rows: Sequence[PayoutRow], rail: str, types: tuple[str, ...], label: str) -> None:
    """Refuse the file when a payout's partner has no payout method of the kinds this format pays."""
    problems = []
    for row in rows:
        if row.method_type is None:
            problems.append(_problem(row, "no payout method on file"))
        elif row.method_type not in types:
            problems.append(_problem(row, f"payout method is {row.method_type}, not {label}"))
    refuse_items(rail, problems)


def csv_file(batch: PayoutBatch, rows: Sequence[PayoutRow]) -> ExportFile:
    """The generic CSV (every payout, whatever its rail): what finance checks or imports elsewhere."""
    content = write_csv(
        CSV_HEADER,
        (
            (
                r.payout_id,
                r.partner_id,
                r.partner_name,
                r.partner_email,
                to_major_string(r.amount, r.currency),
                r.currency,
                r.amount,
                f"partnerpay {batch.id}",
            )
            for r in rows
        ),
    )
    total = sum(r.amount for r in rows)
    return ExportFile(f"{batch.id}.csv", "text/csv; charset=utf-8", content, total, len(rows))


def wise_file(batch: PayoutBatch, rows: Sequence[PayoutRow]) -> ExportFile:
    """Wise batch CSV ("send to bank accounts"): IBAN rows for SEPA partners, ABA rows for ACH partners."""
    _need(rows, "Wise", ("sepa", "ach"), "a bank account (sepa or ach)")
    addressed = batch.currency in ADDRESS_SOURCE_CURRENCIES
    addresses = [address_of(r.details) for r in rows]
    refuse_items(
        "Wise",
        [
            _problem(
                r,
                f"Wise needs the account holder's address for {batch.currency} to {r.currency}: add it to the payout "
                "method",
            )
            for r, address in zip(rows, addresses, strict=True)
            if (addressed or r.currency in ADDRESS_TARGET_CURRENCIES) and address is None
        ],
    )
    body = []
    for r, found in zip(rows, addresses, strict=True):
        sepa = r.method_type == "sepa"
        address = found or dict.fromkeys(ADDRESS_FIELDS, "")
        body.append(
            (
                r.holder,
                r.partner_email,
                f"Commission {r.payout_id}"[:35],
                "INSTITUTION" if r.is_company else "PERSON",
                "target",
                to_major_string(r.amount, r.currency),
                batch.currency,
                r.currency,
                r.details.get("iban", "") if sepa else "",
                (r.details.get("bic") or "") if sepa else "",
                "" if sepa else r.details.get("account_number", ""),
                "" if sepa else r.details.get("routing_number", ""),
                "" if sepa else str(r.details.get("account_type", "")).upper(),
                address["address_country"],
                address["address_city"],
                address["address_line1"],
                address["address_state"],
                address["address_postcode"],
            )
        )
    content = write_csv(WISE_HEADER, body)
    return ExportFile(
        f"{batch.id}-wise.csv", "text/csv; charset=utf-8", content, sum(r.amount for r in rows), len(rows)
    )


def paypal_csv_file(batch: PayoutBatch, rows: Sequence[PayoutRow]) -> ExportFile:
    """PayPal Payouts Web upload: no header; email, amount, currency, customer id, note, wallet."""
    _need(rows, "PayPal CSV", ("paypal",), "paypal")
    if len(rows) > PAYPAL_CSV_MAX_ROWS:
        raise ValidationError(
            f"a PayPal payouts file takes at most {PAYPAL_CSV_MAX_ROWS} rows; this one would have {len(rows)}",
            field="format",
        )
    lines = []
    for r in rows:
        cells = (
            r.details["email"],
            to_major_string(r.amount, r.currency),
            r.currency,
            r.payout_id[-30:],  # Customer ID: at most 30 characters, no spaces
            f"Commission payout {r.payout_id}",
            "PAYPAL",
        )
        lines.append(",".join(_csv_cell(c) for c in cells))
    content = "".join(line + "\r\n" for line in lines)
    return ExportFile(
        f"{batch.id}-paypal.csv", "text/csv; charset=utf-8", content, sum(r.amount for r in rows), len(rows)
    )


def _csv_cell(value: str) -> str:
    text = escape_cell(value)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


def sepa_batch_file(
    batch: PayoutBatch, rows: Sequence[PayoutRow], debtor: SepaDebtor, *, created_at: datetime, schema: str
) -> RailFile:
    _need(rows, "SEPA", ("sepa",), "sepa")
    items = [
        SepaItem(
            payout_id=r.payout_id,
            partner_id=r.partner_id,
            partner_name=r.holder,
            amount=r.amount,
            currency=r.currency,
            iban=r.details.get("iban"),
            bic=r.details.get("bic"),
        )
        for r in rows
    ]
    return sepa_file(
        debtor,
        items,
        schema="pain.001.001.09" if schema == "pain.001.001.09" else "pain.001.001.03",
        message_id=sepa_id(batch.id),
        created_at=created_at,
        execution_date=created_at.date(),
    )


def nacha_batch_file(
    batch: PayoutBatch, rows: Sequence[PayoutRow], originator: AchOriginator, *, created_at: datetime
) -> RailFile:
    _need(rows, "NACHA", ("ach",), "ach")
    items = [
        AchItem(
            payout_id=r.payout_id,
            partner_id=r.partner_id,
            partner_name=r.holder,
            amount=r.amount,
            currency=r.currency,
            routing_number=r.details.get("routing_number"),
            account_number=r.details.get("account_number"),
            account_type=str(r.details.get("account_type", "")),
            sec_code=sec_code_for(is_company=r.is_company),
        )
        for r in rows
    ]
    local = created_at.astimezone(ACH_ZONE)
    return nacha_file(
        originator,
        items,
        file_id_modifier="A",
        created_at=local,
        # An ODFI takes today's file for settlement on the following banking day at the earliest.
        effective_date=next_banking_day(local.date()),
        batch_description="COMMISSION",
    )
