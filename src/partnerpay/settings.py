"""Settings from the environment (PARTNERPAY_*) and .env; built once by the entry point and passed in."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    def require_secret(self) -> str:
        key = self.secret_key.get_secret_value()
        if len(key) < 32:
            raise RuntimeError(
                "PARTNERPAY_SECRET_KEY must be set to at least 32 characters (make run writes one to .env)"
            )
        return key

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
