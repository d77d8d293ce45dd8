"""The DNS-rebinding guard of outgoing webhooks: every attempt resolves the host again, refuses non-public
addresses without sending anything (unless the settings allow private targets), and connects to the address
it checked, keeping the Host header."""

from __future__ import annotations

import ipaddress
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.registry import Registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.programs.models import Program
from partnerpay.settings import Settings
from partnerpay.webhooks_out import emit
from partnerpay.webhooks_out.delivery import handlers, http_post
from partnerpay.webhooks_out.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from partnerpay.webhooks_out.subscriptions import create_subscription
from partnerpay.webhooks_out.targets import (
    Target,
    TargetRefused,
    TargetUnresolved,
    resolve_target,
    why_not_public,
)
from tests import factories
from tests.integration.webhook_receiver import receiver

SETTINGS = Settings(secret_key="t" * 40, outgoing_webhook_timeout_seconds=2)


def resolver(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A DNS that answers what the test says (and nothing for other names)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(-2, "Name or service not known")
        return answers[host]

    return resolve


def worker(
    session_factory: sessionmaker[Session], clock: FixedClock, *, allow: bool, answers: dict[str, list[str]]
) -> Worker:
    registry = Registry()
    for kind, handler in handlers(lambda: SETTINGS.secret_box(), timeout_seconds=2, allow_private_targets=allow,
                                  resolve=resolver(answers)):  # fmt: skip
        registry.add(kind, handler)
    return Worker(session_factory, registry, clock=clock)


def one_event(session: Session, clock: FixedClock, url: str) -> Program:
    prog = factories.program(session, clock.now())
    # Saved while private targets were allowed (or under a name that resolved to a public address then).
    create_subscription(session, actor=SYSTEM, box=SETTINGS.secret_box(), program_id=prog.id, url=url,
                        event_types=["payout.paid"], now=clock.now(), allow_private=True)  # fmt: skip
    emit.emit(session, prog.id, "payout.paid", {"id": "pay_1", "object": "payout"}, clock.now())
    session.commit()
    return prog


def the_delivery(session: Session) -> WebhookDelivery:
    session.expire_all()
    delivery = session.scalars(select(WebhookDelivery)).one()
    session.rollback()  # end the read: on SQLite it holds the lock the next worker run needs
    return delivery


def localhost_url(url: str) -> str:
    """The receiver's URL with `localhost` for its address (a name, as a subscription usually has)."""
    return url.replace(f"//{urlsplit(url).hostname}:", "//localhost:")


class TestAddresses:
    @pytest.mark.parametrize(
        ("address", "kind"),
        [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.9", "private"),
            ("192.168.1.5", "private"),
            ("fd00::1", "private"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to classify, not one to bind)
            ("240.0.0.1", "reserved"),
            ("100.64.0.1", "non-public"),
            ("93.184.216.34", None),
            ("2606:4700:4700::1111", None),
        ],
    )
    def test_kinds(self, address: str, kind: str | None) -> None:
        assert why_not_public(ipaddress.ip_address(address)) == kind

    def test_any_non_public_address_among_several_refuses(self) -> None:
        dns = resolver({"hooks.example.com": ["93.184.216.34", "10.0.0.7"]})
        with pytest.raises(TargetRefused, match=re.escape("hooks.example.com resolves to 10.0.0.7, a private address")):
            resolve_target("https://hooks.example.com/x", allow_private=False, resolve=dns)
        allowed = resolve_target("https://hooks.example.com/x", allow_private=True, resolve=dns)
        assert allowed.addresses == ("93.184.216.34", "10.0.0.7")

    def test_an_address_literal_is_checked_without_resolving(self) -> None:
        with pytest.raises(TargetRefused, match="loopback"):
            resolve_target("http://127.0.0.1:8080/h", allow_private=False, resolve=resolver({}))

    def test_a_name_that_does_not_resolve_is_a_failed_attempt_not_a_refusal(self) -> None:
        with pytest.raises(TargetUnresolved, match=re.escape("could not resolve gone.example.com")):
            resolve_target("https://gone.example.com/h", allow_private=False, resolve=resolver({}))

    def test_the_pinned_request_keeps_the_name_for_host_and_tls(self) -> None:
        target = Target(url="https://hooks.example.com:8443/in?x=1", host="hooks.example.com", addresses=())
        assert target.pinned("93.184.216.34") == (
            "https://93.184.216.34:8443/in?x=1",
            {"Host": "hooks.example.com:8443"},
            {"sni_hostname": "hooks.example.com"},
        )
        v6 = Target(url="https://hooks.example.com/in", host="hooks.example.com", addresses=())
        assert v6.pinned("2606:4700::1")[0] == "https://[2606:4700::1]/in"
        plain = Target(url="http://localhost:9000/h", host="localhost", addresses=())
        assert plain.pinned("127.0.0.1") == ("http://127.0.0.1:9000/h", {"Host": "localhost:9000"}, {})


class TestDelivery:
    def test_with_the_setting_off_a_host_resolving_to_127_0_0_1_gets_no_request(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with receiver() as hook:
            # The name passed the check when the subscription was saved; now it answers 127.0.0.1 (rebinding).
            one_event(session, clock, localhost_url(hook.url))
            worker(session_factory, clock, allow=False, answers={"localhost": ["127.0.0.1"]}).run_pending()
            assert hook.requests == []
        delivery = the_delivery(session)
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1
        assert delivery.last_status_code is None
        assert (delivery.last_error or "").startswith(
            "refused, no request sent: localhost resolves to 127.0.0.1, a loopback address"
        )
        [attempt] = session.scalars(select(WebhookAttempt)).all()
        assert attempt.status_code is None and "PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS" in (
            attempt.error or ""
        )

    def test_the_same_delivery_with_the_setting_on_arrives(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with receiver() as hook:
            one_event(session, clock, localhost_url(hook.url))
            worker(session_factory, clock, allow=True, answers={"localhost": ["127.0.0.1"]}).run_pending()
            [request] = hook.requests
        assert request.headers["host"] == urlsplit(localhost_url(hook.url)).netloc
        assert the_delivery(session).status == DeliveryStatus.DELIVERED

    def test_the_registry_follows_the_setting(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with receiver() as hook:
            one_event(session, clock, localhost_url(hook.url))  # the system's resolver: localhost is loopback
            Worker(session_factory, build_registry(SETTINGS), clock=clock).run_pending()
            assert hook.requests == []
        assert "a loopback address" in (the_delivery(session).last_error or "")

    def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        # The receiver is on 127.0.0.2 only; the system would say localhost is 127.0.0.1, where nothing listens.
        with receiver("127.0.0.2") as hook:
            one_event(session, clock, localhost_url(hook.url))
            # The first address refuses the connection (nothing sent), so the next checked one is tried.
            dns = {"localhost": ["127.0.0.3", "127.0.0.2"]}
            worker(session_factory, clock, allow=True, answers=dns).run_pending()
            [request] = hook.requests
        assert request.headers["host"] == urlsplit(localhost_url(hook.url)).netloc
        assert request.path == "/hooks/partnerpay"
        assert the_delivery(session).status == DeliveryStatus.DELIVERED


@pytest.fixture
def tls_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str]]]:
    """An https receiver on 127.0.0.1 with a certificate for hooks.example.com, trusted through SSL_CERT_FILE;
    yields its port and the Host headers it received."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.com")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class TestTls:
    def test_https_to_the_pinned_address_checks_the_certificate_against_the_name(
        self, tls_receiver: tuple[int, list[str]]
    ) -> None:
        port, hosts = tls_receiver
        dns = resolver({"hooks.example.com": ["127.0.0.1"], "other.example.com": ["127.0.0.1"]})
        target = resolve_target(f"https://hooks.example.com:{port}/in", allow_private=True, resolve=dns)
        assert http_post(target, b"{}", {}, 5) == (204, "")
        assert hosts == [f"hooks.example.com:{port}"]
        # Same address, another name: the certificate is not valid for it, so nothing is sent.
        stranger = resolve_target(f"https://other.example.com:{port}/in", allow_private=True, resolve=dns)
        with pytest.raises(httpx.ConnectError, match=re.escape("other.example.com")):
            http_post(stranger, b"{}", {}, 5)
        assert len(hosts) == 1
