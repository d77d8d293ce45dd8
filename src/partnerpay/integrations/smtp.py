"""Sending email: a real SMTP client, and a logging stand-in when no server is configured.

Both sit behind `Mailer`; `mailer_for(settings)` chooses. The outbox job "email.send"
(messaging/email.py) is the only caller, so a slow or failing server never blocks a request.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

import structlog

from partnerpay.settings import Settings

log = structlog.get_logger(__name__)
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML part shows with `<img src="cid:{cid}">` (a weekly report's chart)."""

    cid: str
    data: bytes
    subtype: str = "png"


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    # Extra headers, e.g. List-Unsubscribe (RFC 8058); the email policy still refuses line breaks in them.
    headers: tuple[tuple[str, str], ...] = ()
    # The left part of a stable Message-ID (the outbox job id): a resent message is recognisably the same one.
    message_id: str | None = None
    # Optional: with html the message is multipart/alternative (text, then HTML with its inline images).
    html: str | None = None
    images: tuple[InlineImage, ...] = ()


class Mailer(Protocol):
    def send(self, email: Email) -> None: ...


class EmailRejected(Exception):
    """The server refused the message for good (a 5xx answer): sending it again cannot help."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = "partnerpay <partnerpay@localhost>"
    starttls: bool = True
    timeout: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )


def build_message(email: Email, sender: str) -> EmailMessage:
    """A plain-text message (with an HTML alternative and its inline images when the email has html);
    the email policy refuses line breaks in headers (no header injection)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{email.message_id}@{domain}>" if email.message_id else make_msgid(domain=domain)
    for name, value in email.headers:
        message[name] = value
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
        html_part = list(message.iter_parts())[-1]
        for image in email.images:
            # multipart/related: mail clients show a cid: image without fetching anything.
            html_part.add_related(
                image.data,
                maintype="image",
                subtype=image.subtype,
                cid=f"<{image.cid}>",
                disposition="inline",
                filename=f"{image.cid}.{image.subtype}",
            )
    return message


class SmtpMailer:
    """smtplib over STARTTLS (port 587 by default) or implicit TLS on port 465, with optional login."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.tls_context = tls_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.port == IMPLICIT_TLS_PORT:
            return smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=self.tls_context)
        return smtplib.SMTP(c.host, c.port, timeout=c.timeout)

    def send(self, email: Email) -> None:
        c = self.config
        message = build_message(email, c.sender)
        try:
            with self._connect() as smtp:
                smtp.ehlo()
                if c.starttls and c.port != IMPLICIT_TLS_PORT:
                    smtp.starttls(context=self.tls_context)
                    smtp.ehlo()
                if c.username:
                    smtp.login(c.username, c.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise EmailRejected(f"the SMTP server refused the recipient {email.to} ({codes[0]})") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                error = exc.smtp_error
                reason = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
                raise EmailRejected(f"the SMTP server refused the message: {exc.smtp_code} {reason}") from exc
            raise
        log.info("email sent", to=email.to, subject=email.subject, smtp_host=c.host)


class LogMailer:
    """No SMTP host configured: the email goes to the log instead, so the demo runs offline."""

    def send(self, email: Email) -> None:
        log.info(
            "email not sent: no SMTP host configured (set PARTNERPAY_SMTP_HOST); here it is",
            to=email.to,
            subject=email.subject,
            text=email.text,
        )


def mailer_for(settings: Settings | None) -> Mailer:
    if settings is None or not settings.smtp_host:
        return LogMailer()
    return SmtpMailer(SmtpConfig.from_settings(settings))
