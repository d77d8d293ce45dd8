"""`partnerpay stripe backfill --program ID`. SKELETON: filled in by issue 5."""

from __future__ import annotations

import typer

stripe = typer.Typer(help="Stripe: pull historic invoices and refunds.", no_args_is_help=True)
