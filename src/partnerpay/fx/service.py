"""Recording a program's currency rates and finding the one that applies on a day.

How the commission engine converts an event amount into the program currency:

    rate = rate_for(session, program.id, event.currency, program.currency, at=event.occurred_at)
    converted = convert(event.amount, event.currency, program.currency, rate, Rounding(program.rounding))
    # converted.amount (program minor units), .rate_id, .rate_text, .inverted and .explain() go on the line

rate_for raises a ValidationError naming the currency pair and the day when the program has no rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from partnerpay.audit.service import record_many
from partnerpay.auth.actor import Actor
from partnerpay.fx.conversion import Converted, FxRate, convert, parse_rate, rate_text
from partnerpay.fx.models import FxRateRecord
from partnerpay.kit.errors import ConcurrentWrite, Conflict, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import Rounding, check_currency
from partnerpay.kit.paging import Page, paginate
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

# convert and the value types are re-exported so that callers import one module.
__all__ = [
    "Converted",
    "FxRate",
    "RateOutcome",
    "add_rates",
    "convert",
    "list_rates",
    "rate_for",
    "rated_currencies",
    "to_program_currency",
]
_MAX_ROWS = 5000


@dataclass(frozen=True, slots=True)
class RateOutcome:
    record: FxRateRecord
    outcome: str  # created | unchanged | replaced


@dataclass(frozen=True, slots=True)
class RateIn:
    """One rate as asked for, checked (rate as units / 10**scale)."""

    base: str
    quote: str
    units: int
    scale: int
    rate_date: date
    source: str


def program_for_rates(session: Session, actor: Actor, program_id: str) -> Program:
    """The program, or 404 for a partner user (rates are the finance team's) or another program's caller."""
    if actor.partner_id is not None:
        raise NotFound(f"program {program_id} not found", field="program_id")
    return get_program(session, actor, program_id)


def _day(value: object, field: str) -> date:
    if isinstance(value, datetime):
        raise ValidationError(f'{field} must be a day such as "2026-03-01", not a time', field=field)
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(f'{field} must be a day such as "2026-03-01", got {value!r}', field=field)


def read_rate_row(i: int, row: object) -> RateIn:
    """One requested rate, checked; errors name `rates.{i}.{field}`."""
    at = f"rates.{i}"
    if not isinstance(row, dict):
        raise ValidationError(f"{at} must be an object with base, quote, rate, rate_date and source", field=at)
    unknown = sorted(set(row) - {"base", "quote", "rate", "rate_date", "source"})
    if unknown:
        raise ValidationError(f"{at}.{unknown[0]} is not a known field", field=f"{at}.{unknown[0]}")
    for name in ("base", "quote", "rate", "rate_date"):
        if row.get(name) is None:
            raise ValidationError(f"{at}.{name} is required", field=f"{at}.{name}")
    base = check_currency(row["base"], field=f"{at}.base")
    quote = check_currency(row["quote"], field=f"{at}.quote")
    if base == quote:
        raise ValidationError(f"{at}: base and quote are both {base}; a rate converts between two currencies",
                              field=f"{at}.quote")  # fmt: skip
    units, scale = parse_rate(row["rate"], field=f"{at}.rate")
    source = row.get("source", "manual")
    if not isinstance(source, str) or not source.strip() or len(source.strip()) > 200:
        raise ValidationError(f"{at}.source must be a text of 1 to 200 characters, such as \"ECB reference rate\"",
                              field=f"{at}.source")  # fmt: skip
    return RateIn(base, quote, units, scale, _day(row["rate_date"], f"{at}.rate_date"), source.strip())


def _snapshot(rec: FxRateRecord) -> dict[str, Any]:
    return {"base": rec.base, "quote": rec.quote, "rate": rec.rate, "rate_date": rec.rate_date.isoformat(),
            "source": rec.source}  # fmt: skip


def add_rates(
    session: Session,
    actor: Actor,
    program_id: str,
    rates: Sequence[object],
    now: datetime,
    *,
    replace: bool = False,
) -> list[RateOutcome]:
    """Record rates (all or nothing). The same rate again for a day is unchanged; a different one is a 409
    naming the row unless `replace`, which rewrites it (audited with before and after)."""
    program = program_for_rates(session, actor, program_id)
    if not isinstance(rates, list | tuple) or not rates:
        raise ValidationError("rates must be a non-empty list", field="rates")
    if len(rates) > _MAX_ROWS:
        raise ValidationError(f"at most {_MAX_ROWS} rates per request, got {len(rates)}", field="rates")
    wanted = [read_rate_row(i, row) for i, row in enumerate(rates)]
    seen: dict[tuple[str, str, date], int] = {}
    for i, r in enumerate(wanted):
        key = (r.base, r.quote, r.rate_date)
        if key in seen:
            raise ValidationError(f"rates.{i} repeats rates.{seen[key]} ({r.base}→{r.quote} on {r.rate_date})",
                                  field=f"rates.{i}")  # fmt: skip
        seen[key] = i
    days = sorted({r.rate_date for r in wanted})
    stmt = select(FxRateRecord).where(FxRateRecord.program_id == program.id, FxRateRecord.rate_date.in_(days))
    existing = {(rec.base, rec.quote, rec.rate_date): rec for rec in session.scalars(stmt.with_for_update())}
    results: list[RateOutcome] = []
    created: list[tuple[str, str, str | None, Any, Any]] = []
    replaced: list[tuple[str, str, str | None, Any, Any]] = []
    for i, r in enumerate(wanted):
        old = existing.get((r.base, r.quote, r.rate_date))
        if old is not None and (old.rate_units, old.rate_scale) == (r.units, r.scale):
            results.append(RateOutcome(old, "unchanged"))
            continue
        if old is not None and not replace:
            raise Conflict(
                f"rates.{i}: {r.base}→{r.quote} on {r.rate_date} is already recorded as {old.rate} ({old.source});"
                f" send replace: true to record {rate_text(r.units, r.scale)} instead",
                field=f"rates.{i}.rate",
            )
        if old is not None:
            before = _snapshot(old)
            old.rate_units, old.rate_scale, old.source = r.units, r.scale, r.source
            old.created_at, old.created_by = now, actor.id
            replaced.append(("fx_rate", old.id, program.id, before, _snapshot(old)))
            results.append(RateOutcome(old, "replaced"))
            continue
        rec = FxRateRecord(
            id=new_id("fxr"),
            program_id=program.id,
            base=r.base,
            quote=r.quote,
            rate_units=r.units,
            rate_scale=r.scale,
            rate_date=r.rate_date,
            source=r.source,
            created_at=now,
            created_by=actor.id,
        )
        session.add(rec)
        created.append(("fx_rate", rec.id, program.id, None, _snapshot(rec)))
        results.append(RateOutcome(rec, "created"))
    try:
        session.flush()
    except IntegrityError as exc:
        # Another request recorded one of these days between our read and our insert: nothing is kept.
        raise ConcurrentWrite("a rate for one of these days was recorded at the same time; send again") from exc
    if created:
        record_many(session, actor=actor, action="fx_rate.add", now=now, items=created)
    if replaced:
        record_many(session, actor=actor, action="fx_rate.replace", now=now, items=replaced)
    return results


def _as_day(at: date | datetime) -> date:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("naive datetime refused: pass the event time with its offset")
        return at.astimezone(UTC).date()
    return at


def rate_for(session: Session, program_id: str, base: str, quote: str, at: date | datetime) -> FxRate:
    """The newest rate on or before the day (UTC day of a datetime) for base → quote.

    A recorded quote → base rate serves too, applied inverted; when both directions exist the newer day
    wins and, on the same day, the rate recorded in the asked direction.
    """
    base = check_currency(base, field="from")
    quote = check_currency(quote, field="to")
    day = _as_day(at)
    found: list[FxRate] = []
    for stored_base, stored_quote, inverted in ((base, quote, False), (quote, base, True)):
        rec = session.scalar(
            select(FxRateRecord)
            .where(
                FxRateRecord.program_id == program_id,
                FxRateRecord.base == stored_base,
                FxRateRecord.quote == stored_quote,
                FxRateRecord.rate_date <= day,
            )
            .order_by(FxRateRecord.rate_date.desc())
            .limit(1)
        )
        if rec is not None:
            found.append(_value(rec, inverted))
    if not found:
        raise ValidationError(
            f"no {base}→{quote} rate on or before {day.isoformat()}; add one with POST /programs/{program_id}/fx-rates",
            field="currency",
            pair=f"{base}/{quote}",
            on=day.isoformat(),
        )
    return max(found, key=lambda r: (r.rate_date, not r.inverted))


def to_program_currency(
    session: Session, program: Program, *, amount: int | None, currency: str | None, at: datetime
) -> Converted | None:
    """An event amount in the program currency with the rate of the event's day; None when nothing needs
    converting (no amount, or already the program currency). No rate: a 422 naming `currency` that says which
    rate to import."""
    if amount is None or currency is None or currency == program.currency:
        return None
    try:
        rate = rate_for(session, program.id, currency, program.currency, at)
    except ValidationError as exc:
        day = _as_day(at).isoformat()
        raise ValidationError(
            f"this program pays in {program.currency}; an event in {currency} on {day} needs a "
            f"{currency}→{program.currency} rate dated on or before {day}: import one with "
            f"POST /programs/{program.id}/fx-rates or `partnerpay fx import FILE --program {program.id}`",
            field="currency",
            pair=f"{currency}/{program.currency}",
            on=day,
        ) from exc
    return convert(amount, currency, program.currency, rate, Rounding(program.rounding))


def rated_currencies(session: Session, program: Program) -> frozenset[str]:
    """The currencies the program has a rate for into its own (in either direction), on any day."""
    direct = select(FxRateRecord.base).where(
        FxRateRecord.program_id == program.id, FxRateRecord.quote == program.currency
    )
    inverse = select(FxRateRecord.quote).where(
        FxRateRecord.program_id == program.id, FxRateRecord.base == program.currency
    )
    return frozenset(session.scalars(direct.union(inverse)))


def _value(rec: FxRateRecord, inverted: bool) -> FxRate:
    return FxRate(rec.id, rec.base, rec.quote, rec.rate_units, rec.rate_scale, rec.rate_date, rec.source, inverted)


def list_rates(
    session: Session,
    actor: Actor,
    program_id: str,
    *,
    base: str | None = None,
    quote: str | None = None,
    on: date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[FxRateRecord]:
    """The program's rates, optionally one pair (either direction is stored separately) and those on or
    before a day."""
    program = program_for_rates(session, actor, program_id)
    stmt = select(FxRateRecord).where(FxRateRecord.program_id == program.id)
    if base:
        stmt = stmt.where(FxRateRecord.base == check_currency(base, field="base"))
    if quote:
        stmt = stmt.where(FxRateRecord.quote == check_currency(quote, field="quote"))
    if on is not None:
        stmt = stmt.where(FxRateRecord.rate_date <= on)
    return paginate(session, stmt, FxRateRecord.id, cursor=cursor, limit=limit)
