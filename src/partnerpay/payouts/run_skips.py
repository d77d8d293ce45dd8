"""Who a payout run pays and who it skips, and why: one decision per partner and line currency.

Reasons, in the order they are checked (the first that applies is the one reported):

- `partner_<status>`: the partner is not active (suspended, banned, …);
- `negative_balance_carried`: clawbacks exceed earnings; the negative total carries to the next run;
- `nets_to_zero`: earnings and clawbacks cancel out;
- `payout_details_changed`: the payout method changed recently and is held for review (`until`);
- `no_verified_payout_method` (gate `require_verified_method`): no active payout method that is verified;
- `tax_form_missing` (gate `require_tax_form`): a US person (partner country US) needs an active, valid
  W-9, anyone else a W-8BEN; a partner with no country passes with either (`needed`);
- `no_fx_rate`: the partner is paid in another currency and the program has no rate for the pair on the
  run's day (`pair`); nothing is converted without a recorded rate;
- `below_minimum`: the amount to send is under the program's minimum for that currency (`minimum`);
  the balance carries over to the next run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.fx.conversion import FxRate, convert
from partnerpay.fx.service import rate_for
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding
from partnerpay.partners.models import PartnerStatus
from partnerpay.payouts.settings import Settings

SKIP_REASONS = (
    "partner_suspended", "negative_balance_carried", "nets_to_zero", "payout_details_changed",
    "no_verified_payout_method", "tax_form_missing", "no_fx_rate", "below_minimum",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Candidate:
    """A partner's eligible lines in one currency, summed, with what the gates look at."""

    partner_id: str
    currency: str  # the lines' currency
    total: int
    count: int
    status: str
    review_until: datetime | None
    country: str | None
    verified_method: bool
    tax_forms: frozenset[str]
    pay_in: str  # the currency the partner is paid in (the lines' own unless the program converts)


@dataclass(frozen=True, slots=True)
class Decision:
    reason: str | None  # None: paid
    amount: int  # to send, in `currency`
    currency: str
    rate: FxRate | None = None
    detail: tuple[tuple[str, Any], ...] = ()

    def skip_row(self, cand: Candidate) -> dict[str, Any]:
        return {
            "partner_id": cand.partner_id,
            "reason": self.reason,
            "amount": cand.total,
            "currency": cand.currency,
            **dict(self.detail),
        }


def needed_tax_form(country: str | None) -> str:
    """The form a payout needs: W-9 for US persons, W-8BEN for everyone else; unknown country: either."""
    if country is None:
        return "w9_or_w8ben"
    return "w9" if country.upper() == "US" else "w8ben"


def rates_for_pairs(
    session: Session, program_id: str, pairs: Iterable[tuple[str, str]], at: datetime
) -> dict[tuple[str, str], FxRate | None]:
    """The recorded rate of each (lines' currency, paid currency) pair on the run's day; None when missing."""
    out: dict[tuple[str, str], FxRate | None] = {}
    for source, target in sorted(set(pairs)):
        if source == target:
            continue
        try:
            out[(source, target)] = rate_for(session, program_id, source, target, at)
        except ValidationError:
            out[(source, target)] = None
    return out


def decide(
    cand: Candidate,
    *,
    settings: Settings,
    cutoff: datetime,
    rates: dict[tuple[str, str], FxRate | None],
    rounding: str,
) -> Decision:
    def skip(reason: str, **detail: Any) -> Decision:
        return Decision(reason, 0, cand.currency, None, tuple(detail.items()))

    if cand.status != PartnerStatus.ACTIVE.value:
        return skip(f"partner_{cand.status}")
    if cand.total < 0:
        return skip("negative_balance_carried")
    if cand.total == 0:
        return skip("nets_to_zero")
    if cand.review_until is not None and cand.review_until > cutoff:
        # Changed payout details hold the payout for review (a hijacked login redirecting money).
        return skip("payout_details_changed", until=cand.review_until.isoformat())
    if settings.require_verified_method and not cand.verified_method:
        return skip("no_verified_payout_method")
    if settings.require_tax_form:
        needed = needed_tax_form(cand.country)
        ok = bool(cand.tax_forms) if needed == "w9_or_w8ben" else needed in cand.tax_forms
        if not ok:
            return skip("tax_form_missing", needed=needed, country=cand.country)
    amount, currency, rate = cand.total, cand.currency, None
    if cand.pay_in != cand.currency:
        rate = rates.get((cand.currency, cand.pay_in))
        if rate is None:
            return skip("no_fx_rate", pair=f"{cand.currency}→{cand.pay_in}", on=cutoff.date().isoformat())
        converted = convert(cand.total, cand.currency, cand.pay_in, rate, Rounding(rounding))
        amount, currency = converted.amount, cand.pay_in
        if amount <= 0:
            return skip("nets_to_zero", converted_currency=currency)
    minimum = settings.minimums.get(currency, 0)
    if amount < minimum:
        return Decision(
            "below_minimum", 0, cand.currency, None,
            (("minimum", minimum), ("minimum_currency", currency), ("amount_to_send", amount)),
        )  # fmt: skip
    return Decision(None, amount, currency, rate)
