"""A statement's rows: each ledger entry on the partner's payable account in the period, explained.

Commission lines bring their own explanation and plan citation (a clawback cites its original's plan);
payouts say which batch carried them and, for a failed or returned one, that the amount came back and why.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.queries import plan_citations
from partnerpay.db.chunks import in_chunks
from partnerpay.kit.money import format_money
from partnerpay.ledger.models import LedgerPosting, LedgerTransaction
from partnerpay.payouts.models import Payout
from partnerpay.statements.canonical import Period, time_text

LINE_REF, PAYOUT_REF = "commission_line", "payout"


def describe_rows(session: Session, account_ids: list[str], period: Period) -> dict[str, list[dict[str, Any]]]:
    """Rows per account, in posting order; amounts signed as the partner sees them (+ owed to them)."""
    if not account_ids:
        return {}
    at = LedgerTransaction.created_at
    postings = session.execute(
        select(
            LedgerPosting.account_id,
            at,
            LedgerTransaction.id,
            LedgerTransaction.kind,
            LedgerTransaction.ref_type,
            LedgerTransaction.ref_id,
            LedgerTransaction.memo,
            LedgerPosting.amount,
        )
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .where(LedgerPosting.account_id.in_(account_ids), at >= period.start, at < period.end)
        .order_by(at, LedgerPosting.id)
    ).all()
    line_ids = sorted({p.ref_id for p in postings if p.ref_type == LINE_REF})
    payout_ids = sorted({p.ref_id for p in postings if p.ref_type == PAYOUT_REF})
    lines = _by_id(session, CommissionLine, line_ids)
    payouts = _by_id(session, Payout, payout_ids)
    cited = plan_citations(session, (line.plan_version_id for line in lines.values()))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in postings:
        text, plan = _explain(p.kind, p.ref_type, p.ref_id, p.memo or "", lines, payouts, cited)
        out[p.account_id].append(
            {
                "at": time_text(p.created_at),
                "type": p.kind,
                "reference": p.ref_id,
                "entry": p.id,
                "description": text,
                "plan": plan,
                "amount": -int(p.amount),
            }
        )
    return out


def _by_id(session: Session, model: Any, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in in_chunks(ids):
        for obj in session.scalars(select(model).where(model.id.in_(chunk))):
            found[obj.id] = obj
    return found


def _explain(
    kind: str,
    ref_type: str,
    ref_id: str,
    memo: str,
    lines: dict[str, CommissionLine],
    payouts: dict[str, Payout],
    cited: dict[str, Any],
) -> tuple[str, str]:
    """(description, plan citation) of one ledger entry."""
    if ref_type == LINE_REF and ref_id in lines:
        line = lines[ref_id]
        citation = cited.get(line.plan_version_id) if line.plan_version_id else None
        plan = ""
        if citation is not None:
            rule = f", rule {line.rule_number}" if line.rule_number else ""
            plan = f"{citation.plan_name} v{citation.version}{rule}"
        elif line.kind not in ("adjustment",):
            plan = "program default rate"
        if kind == "rejection":
            return f"Line {line.id} rejected: {memo or line.rejected_reason or 'no reason given'}", plan
        return line.explanation, plan
    if ref_type == PAYOUT_REF and ref_id in payouts:
        payout = payouts[ref_id]
        if kind == "payout":
            sent = ""
            if payout.source_currency and payout.source_currency != payout.currency:
                sent = f", sent as {format_money(payout.amount, payout.currency)} at rate {payout.fx_rate}"
            return f"Payout {payout.id} in batch {payout.batch_id}{sent}", ""
        if kind in ("payout_failed", "payout_returned"):
            what = "failed" if kind == "payout_failed" else "was returned"
            why = memo or payout.failure_reason or "no reason given"
            return f"Payout {payout.id} {what} ({why}); the amount is back in the balance", ""
    return f"{kind.replace('_', ' ')} ({ref_type} {ref_id})" + (f": {memo}" if memo else ""), ""
