"""The `partnerpay` command: serve, migrate, demo, worker, verify, users, apikeys, payouts.

Settings are built inside each command from the environment and .env, never at import time.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from types import FrameType

import typer
from rich.markup import escape
from rich.table import Table

from partnerpay.alerts.cli import alerts
from partnerpay.audit.cli import audit
from partnerpay.cli_admin import apikeys, payouts, users
from partnerpay.cli_approvals import approvals
from partnerpay.cli_commissions import commissions
from partnerpay.cli_common import database, err, fail, guarded, load_settings, out, parse_time, safe_url
from partnerpay.cli_deals import deals
from partnerpay.cli_events import events
from partnerpay.cli_import import partners
from partnerpay.cli_inbox import inbox
from partnerpay.cli_reconcile import reconcile_command  # noqa: F401  (registers `payouts reconcile`)
from partnerpay.cli_send import send_command  # noqa: F401  (registers `payouts send`)
from partnerpay.cli_statements import statements
from partnerpay.cli_stripe import stripe
from partnerpay.cli_tax import tax
from partnerpay.cli_tracking import fraud
from partnerpay.db.engine import unit_of_work
from partnerpay.fx.cli import fx
from partnerpay.kit.clock import FixedClock, SystemClock
from partnerpay.logs import configure as configure_logs
from partnerpay.messaging.cli import attachments
from partnerpay.plans.cli_simulate import plans
from partnerpay.reports.cli import reports

app = typer.Typer(
    name="partnerpay",
    help="Self-hosted partner programs: referrals, commissions, approvals and payouts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(users, name="users")
app.add_typer(apikeys, name="apikeys")
app.add_typer(payouts, name="payouts")
app.add_typer(partners, name="partners")
app.add_typer(fraud, name="fraud")
app.add_typer(deals, name="deals")
app.add_typer(inbox, name="inbox")
app.add_typer(events, name="events")
app.add_typer(stripe, name="stripe")
app.add_typer(fx, name="fx")
app.add_typer(commissions, name="commissions")
app.add_typer(plans, name="plans")
app.add_typer(tax, name="tax")  # 1099-NEC report, sealed exports (issue 7 part 8)
app.add_typer(approvals, name="approvals")
app.add_typer(reports, name="reports")  # dashboard rollups by hand (issue 8 part 8)
app.add_typer(alerts, name="alerts")  # evaluate the alert rules now (issue 8 part 4)
app.add_typer(audit, name="audit")  # export the audit log as CSV or JSON lines (issue 8 part 7)
app.add_typer(statements, name="statements")  # verify a statement file, export one (issue 8 part 1)
app.add_typer(attachments, name="attachments")  # prune files no attachment refers to (issue 8 part 2)


def _migrate(url: str) -> tuple[str | None, str | None]:
    """Upgrade to head; returns the revision before and after."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from partnerpay.db.engine import make_engine
    from partnerpay.db.migrate import alembic_config, upgrade

    def current() -> str | None:
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                return MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()

    before = current()
    upgrade(url)
    after = current()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert after == head, f"migrated to {after}, but head is {head}"
    return before, after


@app.command()
@guarded
def migrate() -> None:
    """Apply database migrations up to the newest (running it again changes nothing)."""
    settings = load_settings()
    before, after = _migrate(settings.database_url)
    where = safe_url(settings.database_url)
    if before == after:
        out().print(f"{where}: already at revision {after}; nothing to do.")
    else:
        out().print(f"{where}: migrated from {before or 'an empty database'} to revision {after}.")


@app.command()
@guarded
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port.", min=1, max=65535),
    access_log: bool = typer.Option(True, help="Log every request (off for benchmarks or behind a logging proxy)."),
) -> None:
    """Run migrations, then serve the console, portal and API (with the in-process worker if configured)."""
    import uvicorn

    from partnerpay.web.app import create_app

    settings = load_settings()
    configure_logs(json=settings.log_json)
    try:
        settings.require_secret()
    except RuntimeError as exc:
        fail(str(exc), "PARTNERPAY_SECRET_KEY")
    before, after = _migrate(settings.database_url)
    if before != after:
        out().print(f"Migrated {safe_url(settings.database_url)} to revision {after}.")
    application = create_app(settings)
    out().print(f"partnerpay on http://{host}:{port} (database {safe_url(settings.database_url)})")
    from partnerpay.web.one_write import OneWriteHttpToolsProtocol

    # uvicorn turns SIGTERM into a graceful shutdown: in-flight responses finish, then the app's lifespan
    # exit writes the clicks still buffered in memory. One write per small response (web/one_write.py).
    uvicorn.run(
        application, host=host, port=port, proxy_headers=True, access_log=access_log, http=OneWriteHttpToolsProtocol
    )


@app.command()
@guarded
def demo(
    password: str = typer.Option(
        "partnerpay-demo",
        envvar="PARTNERPAY_DEMO_PASSWORD",
        help="Password of the demo users (a documented demo default; never use the demo in production).",
        show_default=True,
    ),
    now: str | None = typer.Option(None, help="Make the demo history end at this time (ISO 8601; default now)."),
    seed: int = typer.Option(2026, help="Seed of the random generator: the same seed gives the same demo."),
) -> None:
    """Create the demo program (skipped, changing nothing, when it exists); prints logins and an API key."""
    from partnerpay.demo import build_demo, check_demo_password

    check_demo_password(password)
    at = parse_time(now, "now") if now is not None else SystemClock().now()
    settings = load_settings()
    _migrate(settings.database_url)
    started = time.perf_counter()
    with database(settings) as factory:
        result = build_demo(factory, clock=FixedClock(at), password=password, seed=seed)
    console = out()
    base = settings.base_url.rstrip("/")
    if result.created:
        console.print(
            f"Created the demo program {result.program_name!r} ({result.program_id}) in "
            f"{time.perf_counter() - started:.1f} s: {result.summary}"
        )
    else:
        console.print(f"The demo program {result.program_name!r} ({result.program_id}) exists; nothing was changed.")
    note = "" if result.password_matches else "  (not the password given now: it was set when the demo was created)"
    console.print(f"Console: {base}/")
    console.print(f"  owner    {result.owner_email}    password: {escape(password)}{note}")
    console.print(f"  finance  {result.finance_email}  password: {escape(password)}{note}")
    console.print(f"  manager  {result.manager_email}  password: {escape(password)}{note}")
    console.print(f"Portal:  {base}/portal")
    console.print(f"  partner  {result.partner_email}  password: {escape(password)}{note}  ({result.partner_name})")
    console.print("These are demo logins with a demo password: do not keep them on a real installation.")
    if result.api_key is None:
        console.print(
            "The demo API key was shown when the demo was created; make another with "
            f"`partnerpay apikeys create --program {result.program_id} --name demo`."
        )
        return
    console.print(f"API key for {result.program_id} (shown once, stored only as a hash):")
    print(result.api_key)


@app.command()
@guarded
def worker(
    once: bool = typer.Option(
        False, "--once", help="Queue the periodic tasks that are due, run every job due now, then exit (for cron)."
    ),
) -> None:
    """Run background jobs from the outbox (any number of workers may run side by side on PostgreSQL)."""
    from partnerpay.jobs.handlers import build_registry
    from partnerpay.jobs.worker import Worker

    settings = load_settings()
    configure_logs(json=settings.log_json)
    with database(settings) as factory:
        runner = Worker(factory, build_registry(settings), clock=SystemClock())
        if once:
            # The periodic tasks too (scheduled payout runs, rollups, alerts, retention): a cron-driven
            # `worker --once` would otherwise never run them. Their slots make a second run a no-op.
            queued = runner.run_periodic()
            ran = runner.run_pending()
            out().print(f"Queued {queued} periodic job(s); ran {ran} job(s); nothing else is due.")
            return
        stop = threading.Event()

        def _stop(signum: int, _frame: FrameType | None) -> None:
            if stop.is_set():
                raise KeyboardInterrupt  # a second signal: stop now; claimed jobs are released
            err().print(f"Stopping after the current job ({signal.Signals(signum).name}; again to stop now).")
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        out().print(f"Worker {runner.worker_id} polling every {settings.worker_poll_seconds:g} s; Ctrl-C stops it.")
        try:
            runner.run_forever(stop, poll_seconds=settings.worker_poll_seconds)
        except KeyboardInterrupt:
            stop.set()
        out().print("Worker stopped.")


@app.command()
@guarded
def verify(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Recompute balances from postings, tie out lines, payouts, batches and files, check the audit chain."""
    from partnerpay.ledger.verify import verify as run_verify

    settings = load_settings()
    with database(settings) as factory, unit_of_work(factory) as session:
        report = run_verify(session)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        raise typer.Exit(0 if report.ok else 1)
    table = Table(title="partnerpay verify", show_header=False)
    table.add_column("check")
    table.add_column("result", justify="right")
    table.add_row("ledger accounts recomputed", str(report.accounts_checked))
    table.add_row("ledger entries checked", str(report.entries_checked))
    table.add_row("audit rows checked", str(report.audit_rows_checked))
    table.add_row("audit chain", "[green]intact[/]" if report.audit_ok else "[red]broken[/]")
    table.add_row("problems", f"[green]{len(report.problems)}[/]" if report.ok else f"[red]{len(report.problems)}[/]")
    console = out()
    console.print(table)
    if report.ok:
        console.print("[green]OK: every balance, line, payout, batch and file ties out.[/]")
        return
    for problem in report.problems:
        console.print(f"[red]✗ {escape(problem)}[/]")
    err().print(f"[bold red]verify found {len(report.problems)} problem(s)[/]")
    raise typer.Exit(1)


def main() -> None:
    """Entry point: usage errors (a bad option value, a missing option) also exit 1 with one red line."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `partnerpay` or `partnerpay users` alone: the help
            print(exc.format_message())
            sys.exit(0)
        try:
            fail(exc.format_message())
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
    except typer.Abort:
        err().print("[red]aborted[/]")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
