"""Rows for the tracking statistics tests, written straight into the tables (the services that write them
belong to other slices), and the figures they should give, worked out in Python from the same rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.db.bulk import bulk_insert
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Customer, Event
from partnerpay.kit.ids import new_id, new_ids

OPENED = datetime(2026, 1, 1, tzinfo=UTC)  # when a deal not (yet) won was opened
CLICK_COLUMNS = ("id", "program_id", "partner_id", "code", "at", "ua_class", "destination")


@dataclass
class Rows:
    """What a test inserted, kept so that the expected figures come from the data, not from the output."""

    session: Session
    clicks: list[tuple[str, str | None, datetime]] = field(default_factory=list)
    events: list[tuple[str, str | None, str, str, datetime, int | None, str | None]] = field(default_factory=list)
    leads: list[tuple[str, str, datetime]] = field(default_factory=list)
    deals: list[tuple[str, str, str, datetime | None, int | None, str | None]] = field(default_factory=list)
    customers: dict[tuple[str, str], str] = field(default_factory=dict)

    def click(self, program_id: str, partner_id: str | None, at: datetime, count: int = 1) -> None:
        rows = [
            (i, program_id, partner_id, "code", at, "desktop", "https://example.com/") for i in new_ids("clk", count)
        ]
        bulk_insert(self.session, "clicks", CLICK_COLUMNS, rows)
        self.clicks += [(program_id, partner_id, at)] * count

    def event(
        self,
        program_id: str,
        partner_id: str | None,
        type: str,
        at: datetime,
        *,
        customer: str | None = None,
        amount: int | None = None,
        currency: str | None = None,
    ) -> None:
        customer = customer or f"c{len(self.events)}"
        key = (program_id, customer)
        if key not in self.customers:
            self.customers[key] = new_id("cus")
            self.session.add(
                Customer(id=self.customers[key], program_id=program_id, external_id=customer, created_at=at)
            )
            self.session.flush()
        self.session.add(
            Event(
                id=new_id("evt"),
                program_id=program_id,
                type=type,
                external_id=f"ext{len(self.events)}",
                occurred_at=at,
                customer_id=self.customers[key],
                partner_id=partner_id,
                amount=amount,
                currency=currency,
                content_hash="0" * 64,
                created_at=at,
            )
        )
        self.events.append((program_id, partner_id, type, customer, at, amount, currency))

    def lead(self, program_id: str, partner_id: str, at: datetime, status: str = "registered") -> None:
        self.session.add(
            Lead(
                id=new_id("lead"),
                program_id=program_id,
                partner_id=partner_id,
                company=f"Company {len(self.leads)}",
                company_key=f"company {len(self.leads)}",
                status=status,
                created_at=at,
                created_by="test",
                last_update_at=at,
            )
        )
        self.leads.append((program_id, partner_id, at))

    def deal(
        self,
        program_id: str,
        partner_id: str,
        status: str,
        won_at: datetime | None,
        amount: int | None = None,
        currency: str | None = None,
    ) -> None:
        at = won_at or OPENED
        self.session.add(
            Deal(
                id=new_id("deal"),
                program_id=program_id,
                partner_id=partner_id,
                company=f"Deal {len(self.deals)}",
                stage=status,
                status=status,
                amount=amount,
                currency=currency,
                won_at=won_at,
                created_at=at,
                updated_at=at,
                last_update_at=at,
            )
        )
        self.deals.append((program_id, partner_id, status, won_at, amount, currency))

    def expected(self, program_id: str, start: date, end: date, partner_id: str | None = None) -> dict[str, Any]:
        """Per-day figures and totals, by plain Python over the inserted rows."""

        def mine(p: str, ptn: str | None) -> bool:
            return p == program_id and (partner_id is None or ptn == partner_id)

        def zero() -> dict[str, Any]:
            return {k: 0 for k in ("clicks", "attributed_clicks", "signups", "leads", "deals_won", "paying")} | {
                "won": {},
                "revenue": {},
            }

        days = {start + timedelta(days=i): zero() for i in range((end - start).days + 1)}
        payers: dict[date, set[str]] = defaultdict(set)
        for p, ptn, at in self.clicks:
            if mine(p, ptn) and at.date() in days:
                days[at.date()]["clicks"] += 1
                days[at.date()]["attributed_clicks"] += ptn is not None
        for p, ptn, type, customer, at, amount, currency in self.events:
            if not mine(p, ptn) or at.date() not in days:
                continue
            if type == "signup":
                days[at.date()]["signups"] += 1
            if type == "invoice_paid":
                payers[at.date()].add(customer)
                if amount is not None and currency:
                    revenue = days[at.date()]["revenue"]
                    revenue[currency] = revenue.get(currency, 0) + amount
        for p, ptn, at in self.leads:
            if mine(p, ptn) and at.date() in days:
                days[at.date()]["leads"] += 1
        for p, ptn, status, won_at, amount, currency in self.deals:
            if mine(p, ptn) and status == "won" and won_at is not None and won_at.date() in days:
                days[won_at.date()]["deals_won"] += 1
                if amount is not None and currency:
                    won = days[won_at.date()]["won"]
                    won[currency] = won.get(currency, 0) + amount
        for d, who in payers.items():
            days[d]["paying"] = len(who)
        totals = zero()
        for figures in days.values():
            for k in ("clicks", "attributed_clicks", "signups", "leads", "deals_won"):
                totals[k] += figures[k]
            for k in ("won", "revenue"):
                for currency, amount in figures[k].items():
                    totals[k][currency] = totals[k].get(currency, 0) + amount
        totals["paying"] = len(set().union(*payers.values())) if payers else 0
        return {"days": days, "totals": totals}
