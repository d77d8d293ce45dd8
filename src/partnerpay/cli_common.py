"""What every CLI command shares: settings built per call, the database, and one way to fail."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NoReturn, ParamSpec, TypeVar

import pydantic
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.engine import make_engine, make_session_factory, normalise_url
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    # Built per call so that whatever sys.stdout is now (a terminal, a pipe, a test runner) is used.
    # soft_wrap: ids and keys are never broken over two lines, so scripts can grep them.
    console = Console(stderr=stderr, soft_wrap=True, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH  # tables keep whole ids in pipes and logs instead of cutting them at 80
    return console


def out() -> Console:
    return _console(stderr=False)


def err() -> Console:
    return _console(stderr=True)


def fail(message: str, field: str | None = None) -> NoReturn:
    """A red one-line message naming the field, then exit 1."""
    where = f" [{field}]" if field else ""
    err().print(f"[bold red]error{escape(where)}:[/] [red]{escape(' '.join(message.split()))}[/]")
    raise typer.Exit(1)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can act on into `fail(...)`; anything else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PartnerpayError as exc:
            fail(exc.message, exc.field)
        except (OperationalError, ProgrammingError) as exc:
            first = (str(exc.orig) if exc.orig else str(exc)).strip().splitlines()[0]
            missing_table = "no such table" in first or ("relation" in first and "does not exist" in first)
            hint = "run `partnerpay migrate` first" if missing_table else "check PARTNERPAY_DATABASE_URL"
            fail(f"{first} ({hint})", "database")

    return wrapper


def load_settings() -> Settings:
    """Settings from the environment and .env, read when a command runs, never at import."""
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = "PARTNERPAY_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ValidationError(f"{name}: {first['msg']}", field=name) from None


def safe_url(url: str) -> str:
    """The database URL with any password hidden, for messages."""
    try:
        return make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is reported by the engine, not here
        return url


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured database; the engine is closed when the command ends."""
    engine: Engine = make_engine(settings.database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def parse_time(value: str, field: str) -> datetime:
    """An ISO 8601 / RFC 3339 time with an offset (a trailing Z means UTC); a naive time is refused."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{value!r} is not an ISO 8601 time such as 2026-01-31T00:00:00Z", field=field) from None
    if parsed.tzinfo is None:
        raise ValidationError(f"{value!r} has no UTC offset; add Z or +01:00", field=field)
    return parsed.astimezone(UTC)
