"""Operator commands: staff users, API keys and payout runs (the shell user acts as the system)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table
from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.auth.models import Role, StaffUser
from partnerpay.auth.service import create_api_key, create_staff_user, staff_actor
from partnerpay.cli_common import database, guarded, load_settings, out, parse_time
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner
from partnerpay.payouts.service import create_payout_run
from partnerpay.payouts.settings import read_settings, write_settings

ROLES = [r.value for r in Role]

users = typer.Typer(help="Staff users of the console.", no_args_is_help=True)
apikeys = typer.Typer(help="Program API keys.", no_args_is_help=True)
payouts = typer.Typer(help="Payout runs.", no_args_is_help=True)


def check_role(role: str) -> str:
    # Checked before the password prompt so that a typo does not cost a password twice.
    if role not in ROLES:
        raise ValidationError(f"role must be one of {ROLES}, got {role!r}", field="role")
    return role


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only the line break is removed, so a password may start or end with spaces.
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        return password[:-1] if password.endswith("\r") else password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("create")
@guarded
def users_create(
    email: str = typer.Option(..., help="Login email of the staff user."),
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from one stdin line."),
) -> None:
    """Create a staff user (without --password-stdin the password is asked twice, hidden)."""
    check_role(role)
    settings = load_settings()
    password = read_password(password_stdin)
    with database(settings) as factory, unit_of_work(factory) as session:
        user = create_staff_user(
            session, actor=SYSTEM, email=email, role=role, password=password, now=SystemClock().now()
        )
        user_id, user_email = user.id, user.email
    out().print(f"Created {role} user {user_email} ({user_id}).")


def parse_scopes(scopes: str | None) -> list[str] | None:
    if scopes is None:
        return None
    chosen = [s.strip() for s in scopes.split(",") if s.strip()]
    if not chosen:
        raise ValidationError("scopes must name at least one scope, e.g. read,write", field="scopes")
    return chosen


@apikeys.command("create")
@guarded
def apikeys_create(
    program: str | None = typer.Option(None, help="Program id (prg_…); without it the key covers all programs."),
    scopes: str | None = typer.Option(
        None, help="Comma-separated: read, write, approve, payouts, admin (default read,write,approve,payouts)."
    ),
    name: str = typer.Option("", help="A label to recognise the key by."),
) -> None:
    """Create an API key; the key is printed once, alone on the last line of stdout."""
    chosen = parse_scopes(scopes)
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        key, secret = create_api_key(
            session, actor=SYSTEM, now=SystemClock().now(), program_id=program, scopes=chosen, name=name
        )
        key_id, key_scopes = key.id, list(key.scopes)
    console = out()
    covers = f"program {program}" if program else "all programs"
    console.print(f"API key {key_id} for {covers}, scopes {', '.join(key_scopes)}.")
    console.print("It is shown once and stored only as a hash; keep it now:")
    # Plain print: nothing but the key on the last line, for `| tail -n1`.
    print(secret)


def acting_as(session_email: str | None, lookup: StaffUser | None) -> Actor:
    if session_email is None:
        return SYSTEM
    if lookup is None:
        raise ValidationError(f"no staff user with email {session_email!r}", field="as_user")
    return staff_actor(lookup)


@payouts.command("run")
@guarded
def payouts_run(
    program: str = typer.Option(..., help="Program id (prg_…)."),
    as_of: str | None = typer.Option(None, "--as-of", help="Pay lines whose hold ended by this time (default now)."),
    as_user: str | None = typer.Option(None, "--as-user", help="Act as this staff user instead of the system."),
    show: int = typer.Option(50, "--show", min=0, help="Payouts and skips listed (the totals count them all)."),
) -> None:
    """Gather approved lines past their hold into draft batches (one per currency), like POST /payout-runs."""
    cutoff = parse_time(as_of, "as_of") if as_of is not None else None
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        user = None
        if as_user is not None:
            user = session.scalar(select(StaffUser).where(StaffUser.email == as_user.strip().lower()))
        actor = acting_as(as_user, user)
        result = create_payout_run(session, actor=actor, program_id=program, as_of=cutoff, now=SystemClock().now())
        # Names only of the rows shown: a run of 100k partners prints a page, not the whole list.
        ids = [p.partner_id for p in result.payouts[:show]] + [str(s["partner_id"]) for s in result.skipped[:show]]
        names = dict(session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids))).all()) if ids else {}
        run_id, as_of_used = result.run.id, result.run.as_of
        batches = [(b.id, b.currency, b.payout_count, b.total, b.fx_rate, b.source_currency) for b in result.batches]
        paid = [(p.partner_id, p.amount, p.currency, p.line_count) for p in result.payouts]
        skipped = list(result.skipped)
        by_reason = result.skipped_by_reason
    console = out()
    if paid:
        table = Table(title=f"Payouts ({len(paid)}; first {min(show, len(paid))} shown)")
        for column in ("partner", "name", "lines"):
            table.add_column(column)
        table.add_column("amount", justify="right")
        for partner_id, amount, currency, lines in paid[:show]:
            table.add_row(partner_id, names.get(partner_id, ""), str(lines), format_money(amount, currency))
        console.print(table)
    if skipped:
        table = Table(title=f"Skipped ({len(skipped)}; first {min(show, len(skipped))} shown)")
        for column in ("partner", "name", "reason", "detail"):
            table.add_column(column)
        table.add_column("amount", justify="right")
        for item in skipped[:show]:
            partner_id = str(item["partner_id"])
            owed, currency = item.get("amount"), str(item.get("currency", ""))
            shown = format_money(owed, currency) if isinstance(owed, int) and currency else ""
            table.add_row(partner_id, names.get(partner_id, ""), str(item["reason"]), skip_detail(item), shown)
        console.print(table)
        console.print("Skipped by reason: " + ", ".join(f"{reason} {n}" for reason, n in by_reason.items()))
    if not batches:
        console.print(f"Run {run_id} (as of {as_of_used.isoformat()}): nothing payable, no batch made.")
        return
    table = Table(title=f"Run {run_id} (as of {as_of_used.isoformat()}): draft batches, totals per currency")
    for column in ("batch", "currency", "payouts"):
        table.add_column(column)
    table.add_column("total", justify="right")
    table.add_column("rate")
    for batch_id, currency, count, total, rate, source in batches:
        table.add_row(
            batch_id, currency, str(count), format_money(total, currency), f"{source}→{currency} {rate}" if rate else ""
        )
    console.print(table)
    console.print(f"{len(paid)} payout(s) in {len(batches)} draft batch(es); {len(skipped)} skipped.")


def skip_detail(item: dict[str, object]) -> str:
    """The skip's particulars (minimum, needed form, missing rate pair, review end) in one short cell."""
    keys = ("minimum", "minimum_currency", "amount_to_send", "needed", "pair", "until")
    return ", ".join(f"{k}={item[k]}" for k in keys if item.get(k) is not None)


@payouts.command("schedule")
@guarded
def payouts_schedule(
    program: str = typer.Option(..., help="Program id (prg_…)."),
    schedule: str | None = typer.Option(None, help="manual | monthly | twice_monthly | weekly | net (omit: show)."),
    day: int | None = typer.Option(None, "--day", help="monthly / twice_monthly: day of month (clamped)."),
    second_day: int | None = typer.Option(None, "--second-day", help="twice_monthly: the second day."),
    weekday: str | None = typer.Option(None, "--weekday", help="weekly: monday … sunday."),
    net_days: int | None = typer.Option(None, "--net-days", help="net: days after approval."),
    hour: int = typer.Option(9, "--hour", help="Local hour of the run (0-23)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone, e.g. Europe/Berlin."),
    minimum: list[str] = typer.Option([], "--minimum", help="CUR=minor units, e.g. EUR=5000 (repeatable)."),
    partner_currency: bool = typer.Option(False, "--pay-in-partner-currency", help="Convert to partners' currency."),
    verified_method: bool = typer.Option(True, "--require-verified-method/--no-require-verified-method"),
    tax_form: bool = typer.Option(False, "--require-tax-form/--no-require-tax-form"),
) -> None:
    """Show the program's payout schedule, or set it (with --schedule), like GET/PUT /programs/{id}/payout-schedule."""
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        if schedule is None:
            current = read_settings(session, SYSTEM, program).as_dict()
        else:
            minimums: dict[str, object] = {}
            for item in minimum:
                currency, _, value = item.partition("=")
                if not value.strip().lstrip("-").isdigit():
                    raise ValidationError(f"--minimum must be CUR=minor units, got {item!r}", field="minimums")
                minimums[currency.strip().upper()] = int(value)
            data = {
                "schedule": schedule, "day_of_month": day, "second_day": second_day, "weekday": weekday,
                "net_days": net_days, "run_hour": hour, "timezone": timezone, "minimums": minimums,
                "pay_in_partner_currency": partner_currency, "require_verified_method": verified_method,
                "require_tax_form": tax_form,
            }  # fmt: skip
            saved = write_settings(session, actor=SYSTEM, program_id=program, data=data, now=SystemClock().now())
            current = saved.as_dict()
    console = out()
    table = Table(title=f"Payout schedule of {program}")
    table.add_column("setting")
    table.add_column("value")
    for key in ("description", "next_run_at", "minimums", "pay_in_partner_currency", "require_verified_method",
                "require_tax_form", "configured"):  # fmt: skip
        value = current[key]
        if key == "minimums":
            value = ", ".join(f"{c} {format_money(int(v), c)}" for c, v in value.items()) or "none"
        table.add_row(key, str(value))
    console.print(table)
