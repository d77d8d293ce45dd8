"""Generic payout CSV: one row per payout, amounts in major units and in minor units."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.kit.csvsafe import write_csv
from partnerpay.kit.money import to_major_string
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutBatch

HEADER = ("payout_id", "partner_id", "partner_name", "email", "amount", "currency", "amount_minor", "reference")


@dataclass(frozen=True)
class ExportFile:
    filename: str
    media_type: str
    content: str
    control_sum: int  # minor units, what the file adds up to
    count: int


def export_csv(session: Session, batch: PayoutBatch) -> ExportFile:
    rows = session.execute(
        select(Payout, Partner.name, Partner.email)
        .join(Partner, Partner.id == Payout.partner_id)
        .where(Payout.batch_id == batch.id)
        .order_by(Payout.partner_id)
    ).all()
    content = write_csv(
        HEADER,
        (
            (
                p.id,
                p.partner_id,
                name,
                email,
                to_major_string(p.amount, p.currency),
                p.currency,
                p.amount,
                f"partnerpay {batch.id}",
            )
            for p, name, email in rows
        ),
    )
    return ExportFile(
        filename=f"{batch.id}.csv",
        media_type="text/csv; charset=utf-8",
        content=content,
        control_sum=sum(p.amount for p, _, _ in rows),
        count=len(rows),
    )


def control_sum_of(content: str) -> tuple[int, int]:
    """Read an exported CSV back: (sum of amount_minor, rows). Used by the tie-out."""
    import csv
    import io

    reader = csv.DictReader(io.StringIO(content))
    total = count = 0
    for row in reader:
        total += int(row["amount_minor"])
        count += 1
    return total, count
