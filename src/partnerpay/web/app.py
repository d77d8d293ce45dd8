"""The application factory: settings, database and clock come in; nothing is read from globals."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send

from partnerpay.db.engine import make_engine, make_session_factory
from partnerpay.inbox.delivery_writer import DeliveryWriter
from partnerpay.integrations.secret_cache import SecretCache
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import Clock, SystemClock
from partnerpay.kit.ratelimit import SlidingWindowLimiter
from partnerpay.settings import Settings
from partnerpay.tracking.click_buffer import ClickWriter
from partnerpay.tracking.clicks import IpHasher
from partnerpay.tracking.link_cache import LinkCache
from partnerpay.tracking.redirect import ClickPath, fill_cache
from partnerpay.tracking.resolver import Resolver
from partnerpay.web import errors
from partnerpay.web.api.v1.router import api
from partnerpay.web.api.v1.webhooks import STRIPE
from partnerpay.web.api.v1.webhooks_shopify import SHOPIFY
from partnerpay.web.templating import configure
from partnerpay.web.webhook_path import WebhookPath

HERE = Path(__file__).parent


def create_app(settings: Settings, *, clock: Clock | None = None, engine: Engine | None = None) -> FastAPI:
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if settings.in_process_worker:
            # Embedded mode: one process serves and works; on PostgreSQL run `partnerpay worker` instead.
            worker = Worker(app.state.session_factory, build_registry(settings), clock=app.state.clock).start_in_thread(
                poll_seconds=settings.worker_poll_seconds
            )
        app.state.click_writer.start()
        app.state.delivery_writer.start()
        # What startup built (modules, routes, the ORM's registry) lives as long as the app: kept out of the
        # collector's scans, a full collection no longer walks ~250k objects (100+ ms, a p99 of its own).
        gc.freeze()
        threading.Thread(
            target=fill_cache, args=(app.state.link_cache, app.state.link_resolver), name="link-cache-fill", daemon=True
        ).start()
        yield
        # uvicorn runs this after the last response went out (SIGTERM included): the final click flush.
        app.state.click_writer.close()
        app.state.delivery_writer.close()
        if worker is not None:
            worker.stop(timeout=10)
        gc.unfreeze()  # an app made and dropped in one process (tests) is collected again once stopped

    app = PartnerpayApp(
        title="partnerpay",
        version="1",
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        description="Partner programs: referrals, commissions, approvals and payouts. Money is integer minor units.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.read_factory = make_session_factory(engine, readonly=True)
    app.state.clock = clock or SystemClock()
    app.state.secret_box = settings.secret_box()
    # Webhooks: decrypted secrets for a few seconds, and the group commit of verified deliveries.
    app.state.webhook_secrets = SecretCache(
        settings.webhook_secret_cache_seconds, readers=app.state.read_factory, box=app.state.secret_box
    )
    app.state.delivery_writer = DeliveryWriter(app.state.session_factory, app.state.read_factory)
    # 10 tries per account or address in 15 minutes: plenty for people, useless for guessing.
    app.state.login_limiter = SlidingWindowLimiter(limit=10, window=timedelta(minutes=15), clock=app.state.clock)
    app.state.templates = configure(Jinja2Templates(directory=str(HERE / "templates")))
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.require_secret(),
        session_cookie="partnerpay_session",
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.base_url.startswith("https"),
    )
    errors.install(app)
    app.include_router(api)
    from partnerpay.web.api.v1.calendar import feed_router as calendar_feed
    from partnerpay.web.console.routes import router as console
    from partnerpay.web.portal.calendar import router as portal_calendar
    from partnerpay.web.portal.dashboard import router as portal_dashboard
    from partnerpay.web.portal.disputes import router as portal_disputes
    from partnerpay.web.portal.leads import router as portal_leads
    from partnerpay.web.portal.links import router as portal_links
    from partnerpay.web.portal.onboarding import router as portal_onboarding
    from partnerpay.web.portal.payouts import router as portal_payouts
    from partnerpay.web.portal.profile import router as portal_profile
    from partnerpay.web.portal.routes import router as portal
    from partnerpay.web.public.routes import router as public

    app.include_router(console)
    # Portal sub-pages first: their fixed paths must not be shadowed by the portal home's routes.
    app.include_router(portal_onboarding)
    app.include_router(portal_calendar)  # Profile > Calendar: the partner user's feed URL (issue 8 part 6)
    app.include_router(portal_profile)
    app.include_router(portal_leads)
    app.include_router(portal_disputes)  # disputes and missing-commission claims (issue 8 part 2)
    app.include_router(portal_links)
    app.include_router(portal_dashboard)  # earnings over time (issue 8 part 8)
    app.include_router(portal_payouts)  # payouts with their timelines (issue 7 part 9)
    from partnerpay.web.portal.statements import router as portal_statements  # monthly statements (issue 8 part 1)
    from partnerpay.web.public.statements import router as public_statements  # the public statement check

    app.include_router(portal_statements)
    app.include_router(public_statements)
    from partnerpay.web.portal.messages import router as portal_messages  # inbox, email preferences (issue 8 part 3)
    from partnerpay.web.public.unsubscribe import router as unsubscribe  # one-click unsubscribe (RFC 8058)

    app.include_router(portal_messages)
    app.include_router(portal)
    app.include_router(public)
    app.include_router(calendar_feed)  # GET /calendar/{token}.ics, the secret ICS feed (issue 8 part 6)
    app.include_router(unsubscribe)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _add_click_path(app, settings)
    app.webhook_path = WebhookPath(
        specs={STRIPE.provider: STRIPE, SHOPIFY.provider: SHOPIFY},
        cache=app.state.webhook_secrets,
        writer=app.state.delivery_writer,
        clock=app.state.clock,
    )
    return app


def _add_click_path(app: PartnerpayApp, settings: Settings) -> None:
    """/r/{code} answered by a plain ASGI handler outside every middleware: no session, no routing."""
    app.state.click_writer = ClickWriter(
        app.state.session_factory, batch_size=settings.click_flush_every, interval_ms=settings.click_flush_ms
    )
    app.state.link_resolver = Resolver(app.state.read_factory, fallback_url=settings.click_fallback_url)
    app.state.link_cache = LinkCache(size=settings.click_cache_size, ttl_seconds=settings.click_cache_ttl_seconds)
    app.click_path = ClickPath(
        resolver=app.state.link_resolver,
        cache=app.state.link_cache,
        writer=app.state.click_writer,
        clock=app.state.clock,
        ip_hasher=IpHasher(settings.require_secret()),
        cookie_domain=settings.click_cookie_domain,
        secure_cookie=settings.base_url.startswith("https"),
    )


class PartnerpayApp(FastAPI):
    """FastAPI with the click path in front of everything: /r/ requests go to it before FastAPI's own
    __call__ (whose telemetry check reads the environment on every request), its error, telemetry and
    body-limit layers, and the middleware. Those cost half a redirect and do nothing a redirect needs."""

    click_path: ClickPath | None = None
    webhook_path: WebhookPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        click_path = self.click_path
        if click_path is not None and click_path.handles(scope):
            await click_path(scope, receive, send)
            return
        webhook_path = self.webhook_path
        if webhook_path is not None and webhook_path.handles(scope):
            await webhook_path(scope, receive, send, super().__call__)
            return
        await super().__call__(scope, receive, send)
