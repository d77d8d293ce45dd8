"""`partnerpay events import FILE --program ID [--dry-run]`. SKELETON: filled in by issue 5."""

from __future__ import annotations

import typer

events = typer.Typer(help="Revenue and lifecycle events: import from CSV.", no_args_is_help=True)
