"""Console: a program's payout schedule, minimum payouts and gates (Settings > program > Payout schedule).

Minimums are typed one per line as "EUR 50" or "USD 49.99" (major units) and stored as exact minor units.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import check_currency, to_major_string
from partnerpay.payouts.schedules import WEEKDAYS, ScheduleKind
from partnerpay.payouts.settings import read_settings, write_settings
from partnerpay.programs.service import get_program
from partnerpay.web.console.access import Staff
from partnerpay.web.console.approval_policy import to_minor
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, reading, redirect, render, role_of
from partnerpay.web.pages import now as clock_now
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
FLAGS = ("pay_in_partner_currency", "require_verified_method", "require_tax_form")


def parse_minimums(text: str) -> dict[str, int]:
    """'EUR 50\\nUSD 49.99' → {'EUR': 5000, 'USD': 4999}; each line's problem names field minimums."""
    out: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.replace("=", " ").split()
        if len(parts) != 2:
            raise ValidationError(f"minimums line {n}: write a currency and an amount, like EUR 50, got {raw!r}",
                                  field="minimums")  # fmt: skip
        currency = check_currency(parts[0].upper(), field="minimums")
        amount = to_minor(parts[1], currency, "minimums")
        out[currency] = amount or 0
    return out


def _int_or_none(text: str, field: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise ValidationError(f"{field} must be a whole number, got {text!r}", field=field)
    return int(text)


def _page(
    request: Request, me: Actor, program_id: str, *, typed: dict[str, Any] | None = None,
    error: PartnerpayError | None = None,
) -> Response:  # fmt: skip
    with reading(request) as session:
        program = get_program(session, me, program_id)
        current = read_settings(session, me, program.id)
    data = current.as_dict()
    values = typed or {
        **{k: "" if data[k] is None else str(data[k]) for k in ("day_of_month", "second_day", "net_days")},
        "schedule": data["schedule"],
        "weekday": WEEKDAYS[data["weekday"]] if data["weekday"] is not None else "",
        "run_hour": str(data["run_hour"]),
        "timezone": data["timezone"],
        "minimums": "\n".join(f"{c} {to_major_string(v, c)}" for c, v in data["minimums"].items()),
        **{k: data[k] for k in FLAGS},
    }
    context = {
        "area": "console", "me": me, "role": role_of(me), "page": "settings", "program": program,
        "settings": data, "v": values, "kinds": [k.value for k in ScheduleKind], "weekdays": WEEKDAYS,
        "can_edit": me.can("payouts"), "error": error,
    }  # fmt: skip
    return render(request, "console/payout_schedule.html", context, status_code=error.status if error else 200)


@router.get("/settings/program/{program_id}/payouts")
def schedule_page(request: Request, program_id: str, me: Actor = Staff) -> Response:
    return _page(request, me, program_id)


@router.post("/settings/program/{program_id}/payouts")
def save_schedule(
    request: Request,
    program_id: str,
    me: Actor = Staff,
    schedule: Annotated[str, Form()] = "manual",
    day_of_month: Annotated[str, Form()] = "",
    second_day: Annotated[str, Form()] = "",
    weekday: Annotated[str, Form()] = "",
    net_days: Annotated[str, Form()] = "",
    run_hour: Annotated[str, Form()] = "9",
    timezone: Annotated[str, Form()] = "UTC",
    minimums: Annotated[str, Form()] = "",
    pay_in_partner_currency: Annotated[bool, Form()] = False,
    require_verified_method: Annotated[bool, Form()] = False,
    require_tax_form: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    typed: dict[str, Any] = {
        "schedule": schedule, "day_of_month": day_of_month, "second_day": second_day, "weekday": weekday,
        "net_days": net_days, "run_hour": run_hour, "timezone": timezone, "minimums": minimums,
        "pay_in_partner_currency": pay_in_partner_currency, "require_verified_method": require_verified_method,
        "require_tax_form": require_tax_form,
    }  # fmt: skip
    try:
        # Only the fields the chosen schedule uses are sent: a hidden day box left filled is not an error.
        uses = {"monthly": {"day_of_month"}, "twice_monthly": {"day_of_month", "second_day"},
                "weekly": {"weekday"}, "net": {"net_days"}}.get(schedule, set())  # fmt: skip
        data: dict[str, Any] = {
            "schedule": schedule,
            "run_hour": _int_or_none(run_hour, "run_hour") if run_hour.strip() else 9,
            "timezone": timezone.strip() or "UTC",
            "minimums": parse_minimums(minimums),
            **{k: typed[k] for k in FLAGS},
        }
        for name in ("day_of_month", "second_day", "net_days"):
            if name in uses:
                data[name] = _int_or_none(typed[name], name)
        if "weekday" in uses:
            data["weekday"] = weekday or None
        with unit_of_work(factory(request)) as session:
            saved = write_settings(session, actor=me, program_id=program_id, data=data, now=clock_now(request))
    except PartnerpayError as exc:
        return _page(request, me, program_id, typed=typed, error=exc)
    when = saved.next_run_at.strftime("%d %b %Y %H:%M UTC") if saved.next_run_at else "only when run by hand"
    flash(request, f"Payout schedule saved: {saved.schedule.describe()}. Next run: {when}.")
    return redirect(f"/settings/program/{program_id}/payouts")
