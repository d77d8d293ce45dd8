"""The "email.send" job against a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS with login, refusals."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.integrations.smtp import Email, EmailRejected, SmtpConfig, SmtpMailer
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.email import EMAIL_SEND
from partnerpay.partners.invitations import invite_partner
from partnerpay.settings import Settings
from tests import factories

BASE_URL = "https://partners.example.com"
LOGIN, SECRET = "mailer", "s3cret-smtp-password"


@dataclass
class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses mail for @refused.example."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == LOGIN.encode()
        and auth_data.password == SECRET.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def plain_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    yield inbox, controller.port, cert
    controller.stop()


def settings(database_url: str, port: int, **kw: Any) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="k" * 40,
        base_url=BASE_URL,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="Acme partners <partners@acme.example>",
        **kw,
    )


def invite(session_factory: sessionmaker[Session], clock: FixedClock, email: str = "ada@example.com") -> str:
    with session_factory() as s:
        prog = factories.program(s, clock.now(), name="Acme")
        _, _, token = invite_partner(s, actor=SYSTEM, program_id=prog.id, name="Ada Blog", email=email, now=clock.now())
        s.commit()
    return token


def email_job(session_factory: sessionmaker[Session]) -> OutboxJob:
    with session_factory() as s:
        job = s.scalar(select(OutboxJob).where(OutboxJob.kind == EMAIL_SEND))
        assert job is not None
        return job


class TestEmailJobOverSmtp:
    def test_the_invitation_email_reaches_the_server_with_the_absolute_link(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        plain_server: tuple[Inbox, int],
    ) -> None:
        inbox, port = plain_server
        token = invite(session_factory, clock)

        Worker(session_factory, build_registry(settings(database_url, port)), clock=clock).run_pending()

        [message] = inbox.messages
        assert message["To"] == "ada@example.com"
        assert message["From"] == "Acme partners <partners@acme.example>"
        assert message["Subject"] == "You are invited to the Acme partner program"
        assert message["Message-ID"] and message["Date"]
        body = message.get_content()
        assert f"{BASE_URL}/invite/{token}" in body and "Hello Ada Blog" in body
        assert inbox.envelopes == [("partners@acme.example", ["ada@example.com"])]
        assert email_job(session_factory).status == JobStatus.DONE.value

    def test_a_refused_recipient_makes_the_job_dead_at_once(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        plain_server: tuple[Inbox, int],
    ) -> None:
        inbox, port = plain_server
        invite(session_factory, clock, email="nobody@refused.example")

        Worker(session_factory, build_registry(settings(database_url, port)), clock=clock).run_pending()

        job = email_job(session_factory)
        assert inbox.messages == []
        assert job.status == JobStatus.DEAD.value and job.attempts == 1
        assert "refused the recipient nobody@refused.example (550)" in (job.last_error or "")

    def test_an_unreachable_server_is_retried_later(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        invite(session_factory, clock)
        closed_port = free_port()

        registry = build_registry(settings(database_url, closed_port, smtp_timeout_seconds=2))
        Worker(session_factory, registry, clock=clock).run_pending()

        job = email_job(session_factory)
        assert job.status == JobStatus.PENDING.value and job.attempts == 1 and job.run_after > clock.now()
        assert "invite/" in job.payload["text"] and "/invite/***" not in job.payload["text"]

    def test_without_an_smtp_host_the_email_is_logged_and_the_job_succeeds(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        invite(session_factory, clock)
        offline = Settings(database_url=database_url, secret_key="k" * 40, smtp_host="")

        Worker(session_factory, build_registry(offline), clock=clock).run_pending()

        assert email_job(session_factory).status == JobStatus.DONE.value


class TestSmtpMailer:
    def test_starttls_and_login_are_used_when_configured(self, tls_server: tuple[Inbox, int, Path]) -> None:
        inbox, port, cert = tls_server
        config = SmtpConfig(host="127.0.0.1", port=port, username=LOGIN, password=SECRET, sender="p@acme.example")
        mailer = SmtpMailer(config, tls_context=ssl.create_default_context(cafile=str(cert)))

        mailer.send(Email(to="ada@example.com", subject="Hello", text="over TLS"))

        [message] = inbox.messages
        assert message["Subject"] == "Hello" and message.get_content().strip() == "over TLS"

    def test_a_wrong_password_is_a_permanent_refusal(self, tls_server: tuple[Inbox, int, Path]) -> None:
        inbox, port, cert = tls_server
        config = SmtpConfig(host="127.0.0.1", port=port, username=LOGIN, password="wrong", sender="p@acme.example")
        mailer = SmtpMailer(config, tls_context=ssl.create_default_context(cafile=str(cert)))

        with pytest.raises(EmailRejected, match="535"):
            mailer.send(Email(to="ada@example.com", subject="Hello", text="x"))
        assert inbox.messages == []

    def test_the_password_is_not_in_the_configs_repr(self) -> None:
        assert SECRET not in repr(SmtpConfig(host="h", password=SECRET))
