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
from partnerpay.programs.service import get_program

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
) -> None:
    """Gather approved lines past their hold into one draft batch, like POST /payout-runs."""
    cutoff = parse_time(as_of, "as_of") if as_of is not None else None
    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        user = None
        if as_user is not None:
            user = session.scalar(select(StaffUser).where(StaffUser.email == as_user.strip().lower()))
        actor = acting_as(as_user, user)
        result = create_payout_run(session, actor=actor, program_id=program, as_of=cutoff, now=SystemClock().now())
        ids = [p.partner_id for p in result.payouts] + [str(s["partner_id"]) for s in result.skipped]
        names = dict(session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids))).all())
        run_id, as_of_used = result.run.id, result.run.as_of
        currency = get_program(session, actor, program).currency
        batch = (result.batch.id, result.batch.total) if result.batch else None
        paid = [(p.partner_id, p.amount, p.currency, p.line_count) for p in result.payouts]
        skipped = list(result.skipped)
    console = out()
    if paid:
        table = Table(title=f"Payouts in batch {batch[0] if batch else ''}")
        for column in ("partner", "name", "lines"):
            table.add_column(column)
        table.add_column("amount", justify="right")
        for partner_id, amount, currency, lines in paid:
            table.add_row(partner_id, names.get(partner_id, ""), str(lines), format_money(amount, currency))
        console.print(table)
    if skipped:
        table = Table(title="Skipped")
        for column in ("partner", "name", "reason"):
            table.add_column(column)
        table.add_column("amount", justify="right")
        for item in skipped:
            partner_id = str(item["partner_id"])
            owed = item.get("amount")
            shown = format_money(owed, currency) if isinstance(owed, int) else ""
            table.add_row(partner_id, names.get(partner_id, ""), str(item["reason"]), shown)
        console.print(table)
    if batch is None:
        console.print(f"Run {run_id} (as of {as_of_used.isoformat()}): nothing payable, no batch made.")
    else:
        console.print(
            f"Run {run_id} (as of {as_of_used.isoformat()}): draft batch {batch[0]} with {len(paid)} payout(s), "
            f"{format_money(batch[1], currency)}; {len(skipped)} partner(s) skipped."
        )
