"""`partnerpay tax 1099 --program ID --year YYYY [--out FILE]` and `partnerpay tax decrypt FILE`.

Without --out the report is printed with TINs masked. With --out the full report (TIN and address in clear)
is written as a passphrase-sealed file (tax/sealed_file.py); the passphrase is asked twice, or read from
stdin with --passphrase-stdin, and never stored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, fail, guarded, load_settings, out
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.clock import SystemClock
from partnerpay.kit.money import format_money
from partnerpay.tax.nec import full_csv, nec_report
from partnerpay.tax.sealed_file import check_passphrase, seal, unseal

tax = typer.Typer(help="Tax reports: 1099-NEC, and opening sealed exports.", no_args_is_help=True)


def _passphrase(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm))


@tax.command("1099")
@guarded
def nec_command(
    program: str = typer.Option(..., help="Program id (prg_…)."),
    year: int = typer.Option(..., help="Calendar year of the payments (paid date, UTC)."),
    out_file: Path | None = typer.Option(
        None, "--out", help="Write the full report (TINs in clear) here, sealed with a passphrase."
    ),
    passphrase_stdin: bool = typer.Option(False, "--passphrase-stdin", help="Read the passphrase from stdin."),
) -> None:
    """US partners (W-9) paid at least the program's threshold in the year; TINs masked unless sealed to a file."""
    passphrase = _passphrase(passphrase_stdin, confirm=True) if out_file is not None else ""
    if out_file is not None:
        check_passphrase(passphrase)
    settings = load_settings()
    now = SystemClock().now()
    with database(settings) as factory, unit_of_work(factory) as session:
        report = nec_report(session, actor=SYSTEM, program_id=program, year=year, now=now)
        content = (
            full_csv(session, actor=SYSTEM, box=settings.secret_box(), report=report, now=now) if out_file else None
        )
    console = out()
    table = Table(title=f"1099-NEC {year}: paid at least {format_money(report.threshold, 'USD')}")
    for column in ("partner", "legal name", "TIN", "payouts"):
        table.add_column(column)
    table.add_column("amount", justify="right")
    for r in report.recipients:
        table.add_row(r.partner_id, r.legal_name, r.tin_masked, str(r.payouts), format_money(r.amount, "USD"))
    console.print(table)
    console.print(
        f"{len(report.recipients)} recipient(s), {format_money(report.total, 'USD')}; "
        f"{report.below_threshold} US partner(s) under the threshold; "
        f"{len(report.without_w9)} paid in USD without a W-9 on file."
    )
    for currency, count in report.other_currencies.items():
        console.print(f"{count} payout(s) in {currency} are not in this USD report.")
    if out_file is not None and content is not None:
        out_file.write_bytes(seal(content.encode(), filename=f"1099-nec-{year}.csv", passphrase=passphrase))
        console.print(f"Sealed full report written to {escape(str(out_file))}; open it with `partnerpay tax decrypt`.")


@tax.command("decrypt")
@guarded
def decrypt_command(
    file: Path = typer.Argument(..., help="A sealed export (…sealed.json)."),
    out_file: Path | None = typer.Option(None, "--out", help="Where to write the content (default: its own name)."),
    passphrase_stdin: bool = typer.Option(False, "--passphrase-stdin", help="Read the passphrase from stdin."),
) -> None:
    """Open a sealed export with its passphrase."""
    if not file.is_file():
        fail(f"{file} is not a file", "FILE")
    name, content = unseal(file.read_bytes(), passphrase=_passphrase(passphrase_stdin, confirm=False))
    target = out_file or file.with_name(name)
    target.write_bytes(content)
    out().print(f"Wrote {escape(str(target))} ({len(content):,} bytes).")
