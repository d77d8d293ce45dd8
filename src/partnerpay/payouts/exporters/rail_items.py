"""What the bank-file builders take: plain frozen values, read from the database by the caller.

The builders (sepa.py, nacha.py) never touch the database or the clock: the payout batch code
decrypts the partner's payout details and the program's funding account, turns them into these
values and passes the file's creation time in. That keeps every file reproducible byte for byte
from its inputs, which the tests (and a re-export) rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import cast

from text_unidecode import unidecode

from partnerpay.kit.errors import ValidationError
from partnerpay.payouts.exporters.csv_file import ExportFile

LISTED_IN_MESSAGE = 10


class SecCode(StrEnum):
    """NACHA Standard Entry Class: PPD pays a consumer's account, CCD a company's."""

    PPD = "PPD"
    CCD = "CCD"


class AccountType(StrEnum):
    CHECKING = "checking"
    SAVINGS = "savings"


def sec_code_for(*, is_company: bool) -> SecCode:
    return SecCode.CCD if is_company else SecCode.PPD


@dataclass(frozen=True, slots=True)
class SepaDebtor:
    """The program's SEPA funding account (`PUT /programs/{id}/funding-account` → `sepa`)."""

    name: str
    iban: str
    bic: str | None = None


@dataclass(frozen=True, slots=True)
class SepaItem:
    """One payout to a partner's IBAN. `payout_id` becomes the EndToEndId the bank reports back."""

    payout_id: str
    partner_id: str
    partner_name: str  # the account holder on the partner's payout method
    amount: int  # minor units (cents)
    currency: str
    iban: str | None
    bic: str | None = None
    remittance: str = ""  # RmtInf/Ustrd; empty → "Commission payout <payout id>"


@dataclass(frozen=True, slots=True)
class AchOriginator:
    """The program's ACH funding account (`PUT /programs/{id}/funding-account` → `ach`)."""

    company_name: str  # batch header, 16 characters
    company_id: str  # 10 characters, usually "1" + EIN
    odfi_routing: str  # the originating bank's 9-digit routing number
    immediate_destination: str  # 9-digit routing number of the bank or operator receiving the file
    immediate_origin: str  # 9 digits, or 10 characters ("1" + EIN) as the bank assigned
    immediate_destination_name: str = ""
    immediate_origin_name: str = ""
    reference_code: str = ""


@dataclass(frozen=True, slots=True)
class AchItem:
    """One payout credited to a partner's US bank account."""

    payout_id: str
    partner_id: str
    partner_name: str  # the account holder on the partner's payout method
    amount: int  # cents
    currency: str
    routing_number: str | None
    account_number: str | None
    account_type: str  # checking | savings
    sec_code: SecCode = SecCode.PPD


@dataclass(frozen=True)
class RailFile(ExportFile):
    """An ExportFile that also says how the bank will refer to each payout in its reports and
    returns: (payout id, EndToEndId) for SEPA, (payout id, trace number) for NACHA."""

    references: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ItemProblem:
    payout_id: str
    partner_id: str
    partner_name: str
    reason: str

    def describe(self) -> str:
        return f"partner {self.partner_name} ({self.partner_id}, payout {self.payout_id}): {self.reason}"


def refuse_items(rail: str, problems: Sequence[ItemProblem]) -> None:
    """Raise one error listing every bad item, so finance fixes them all before trying again."""
    if not problems:
        return
    # The message names the first few; the full list is in `problems` (the API returns it too).
    listed = "; ".join(p.describe() for p in problems[:LISTED_IN_MESSAGE])
    if len(problems) > LISTED_IN_MESSAGE:
        listed += f"; and {len(problems) - LISTED_IN_MESSAGE} more"
    noun = "payout" if len(problems) == 1 else "payouts"
    raise ValidationError(
        f"{len(problems)} {noun} cannot go in a {rail} file, no file was produced: {listed}",
        field="items",
        problems=[
            {"payout_id": p.payout_id, "partner_id": p.partner_id, "partner": p.partner_name, "reason": p.reason}
            for p in problems
        ],
    )


def ascii_text(value: str) -> str:
    """Transliterate to ASCII (ü → u, ß → ss, Ж → Zh, 北京 → Bei Jing) with text-unidecode, which
    is a table per Unicode code point: a name stays readable instead of losing its letters."""
    return cast(str, unidecode(value))


def check_aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} must be a timezone-aware datetime, got {value!r}", field=what)
    return value
