"""Settings from the environment (PARTNERPAY_*) and .env; built once by the entry point and passed in."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from partnerpay.kit.crypto import SecretBox


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARTNERPAY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./partnerpay.db"
    secret_key: SecretStr = Field(default=SecretStr(""), description="signs sessions and CSRF tokens")
    base_url: str = "http://127.0.0.1:8000"
    # On SQLite one process does everything; on PostgreSQL run `partnerpay worker` processes instead.
    in_process_worker: bool = True
    worker_poll_seconds: float = 1.0
    session_max_age_seconds: int = 12 * 3600
    log_json: bool = False
    # Outgoing email (welcome and invitation links). No host: emails are logged instead of sent,
    # so the demo runs offline.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "partnerpay <partnerpay@localhost>"
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 15.0
    # Uploaded attachments (message files, dispute evidence) are stored outside the database, in this
    # directory (created on demand) under their SHA-256; uploads larger than attachment_max_bytes get a 413.
    attachments_dir: str = "./attachments"
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Files there that no row refers to (an upload whose transaction rolled back) are removed daily once they
    # are this old (`partnerpay attachments prune`); younger ones may belong to an upload still in flight.
    attachment_orphan_grace_hours: float = Field(default=24, ge=1)
    # The click path (/r/{code}): clicks are written every click_flush_every clicks or click_flush_ms
    # milliseconds, whichever comes first; resolved codes stay in memory for click_cache_ttl_seconds.
    click_flush_every: int = Field(default=500, ge=1)
    click_flush_ms: int = Field(default=200, ge=1)
    click_cache_size: int = Field(default=150_000, ge=1)  # about 600 bytes an entry
    click_cache_ttl_seconds: float = Field(default=30.0, gt=0)
    # Where unknown codes go when there is not exactly one program to send them to (default: "/").
    click_fallback_url: str = ""
    # Set to ".example.com" when partnerpay runs on a subdomain of the site, so the site's script can read pp_ref.
    click_cookie_domain: str = Field(default="", pattern=r"^[A-Za-z0-9.-]*$")
    # After a key change, the old keys (JSON list) still open secrets sealed with them.
    retired_secret_keys: list[SecretStr] = Field(default_factory=list)
    # How long a process keeps a program's decrypted webhook secrets (0: read them on every delivery).
    webhook_secret_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Google Calendar (calendars/google_sync.py): where the OAuth consent, token and Calendar API v3 live. Set by
    # the operator, never by a program (a program setting could send its sealed tokens to any host); tests point
    # them at a local server.
    google_oauth_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_oauth_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
    google_calendar_api_url: str = "https://www.googleapis.com/calendar/v3"
    # Done outbox jobs keep their payload (weekly report emails carry their PNG charts) this many days, then it
    # is cleared daily (jobs/retention.py); the row itself stays.
    outbox_retention_days: int = Field(default=30, ge=1)
    # Outgoing webhooks (webhooks_out/): how long one delivery attempt waits for the receiver's answer.
    outgoing_webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Each delivery resolves the receiver's host again and refuses loopback, private, link-local, multicast and
    # reserved addresses (DNS rebinding, webhooks_out/targets.py). True lets them through: a receiver on this
    # machine in development and tests, never in production.
    outgoing_webhook_allow_private_targets: bool = False

    def require_secret(self) -> str:
        key = self.secret_key.get_secret_value()
        if len(key) < 32:
            raise RuntimeError(
                "PARTNERPAY_SECRET_KEY must be set to at least 32 characters (make run writes one to .env)"
            )
        return key

    def secret_box(self) -> SecretBox:
        """Encrypts secrets at rest with keys derived from the secret key (retired keys still decrypt)."""
        return SecretBox(self.require_secret(), retired=[k.get_secret_value() for k in self.retired_secret_keys])

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
