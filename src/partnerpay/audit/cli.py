"""`partnerpay audit export`: the audit log (or a filtered part) as CSV or JSON lines, written as it is read."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from partnerpay.audit.export import csv_chunks, jsonl_chunks
from partnerpay.audit.models import AuditEntry
from partnerpay.audit.queries import actor_names, check_filter, filtered, iterate
from partnerpay.auth.actor import SYSTEM
from partnerpay.cli_common import database, err, guarded, load_settings
from partnerpay.kit.errors import ValidationError

audit = typer.Typer(help="The audit log: export it.", no_args_is_help=True)


@audit.command("export")
@guarded
def export_command(
    format: str = typer.Option("csv", "--format", help="csv (formula-escaped) or jsonl"),
    out_file: Path | None = typer.Option(None, "--out", help="file to write; default: standard output"),
    actor: str | None = typer.Option(None, "--actor", help="actor id or a user's email"),
    action: str | None = typer.Option(None, "--action", help="exact action, or a prefix ending in '.'"),
    object_type: str | None = typer.Option(None, "--object-type"),
    object_id: str | None = typer.Option(None, "--object-id"),
    program: str | None = typer.Option(None, "--program", help="program id (prg_…)"),
    since: str | None = typer.Option(None, "--since", help="RFC 3339 time, inclusive"),
    until: str | None = typer.Option(None, "--until", help="RFC 3339 time, exclusive"),
    text: str | None = typer.Option(None, "--text", help="free text in ids, actions and values"),
) -> None:
    """Every matching audit entry, newest first (the same filters and columns as GET /api/v1/audit/export)."""
    if format not in ("csv", "jsonl"):
        raise ValidationError(f"--format must be csv or jsonl, got {format!r}", field="format")
    f = check_filter(
        {
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "program_id": program,
            "since": since,
            "until": until,
            "text": text,
        }
    )
    settings = load_settings()
    with database(settings) as factory, factory() as session:
        ids = set(session.scalars(filtered(session, SYSTEM, f).with_only_columns(AuditEntry.actor_id).distinct()))
        chunks = (csv_chunks if format == "csv" else jsonl_chunks)(
            iterate(session, SYSTEM, f), actor_names(session, ids)
        )
        target = out_file.open("w", encoding="utf-8", newline="") if out_file else sys.stdout
        try:
            for chunk in chunks:
                target.write(chunk)
        finally:
            if out_file:
                target.close()
    if out_file:
        err().print(f"Audit entries written to {out_file}.")
