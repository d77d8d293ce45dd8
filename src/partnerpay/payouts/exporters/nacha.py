"""NACHA ACH file of credits (PPD to people, CCD to companies) for one payout batch.

Layout as in ../shared/PROVIDERS.md §6: 94-character records, a file header (1), per SEC code a
batch header (5), its entries (6) and a batch control (8), a file control (9), and lines of 94
nines up to a multiple of 10 records. Alphanumeric fields are left-justified and space-filled,
numeric ones right-justified and zero-filled, amounts in cents.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import check_minor_units
from partnerpay.partners.validation import check_account_number, check_routing_number
from partnerpay.payouts.exporters.rail_items import (
    AccountType,
    AchItem,
    AchOriginator,
    ItemProblem,
    RailFile,
    SecCode,
    ascii_text,
    check_aware,
    refuse_items,
)

RECORD_LENGTH = 94
BLOCKING_FACTOR = 10
MEDIA_TYPE = "text/plain; charset=us-ascii"
CREDITS_ONLY = "220"  # service class code of a batch holding credits only
CREDIT_CODES = {AccountType.CHECKING: "22", AccountType.SAVINGS: "32"}
MAX_AMOUNT = 9_999_999_999  # the entry's 10-digit amount field, in cents
MAX_TOTAL = 999_999_999_999  # the 12-digit total credit fields of batch and file control
MAX_BATCH_ENTRIES = 999_999  # the batch control's 6-digit entry count
MAX_FILE_ENTRIES = 9_999_999  # the 7-digit trace sequence, unique in the file
# Upper-case letters, digits, space and a few signs every ODFI accepts; the rest becomes a space.
_UNSAFE = re.compile(r"[^A-Z0-9 &'(),\-./]")
_FILE_ID_MODIFIER = re.compile(r"^[A-Z0-9]$")


def ach_text(value: str, length: int) -> str:
    """Upper-case ASCII (transliterated, ü → U), signs outside the safe set as spaces, cut to length."""
    return _UNSAFE.sub(" ", ascii_text(value).upper()).strip()[:length]


def alpha(value: str, length: int) -> str:
    """Alphanumeric field: left-justified, space-filled."""
    if len(value) > length:
        raise ValueError(f"{value!r} does not fit {length} characters")
    return value.ljust(length)


def num(value: int, length: int) -> str:
    """Numeric field: right-justified, zero-filled."""
    text = str(value)
    if value < 0 or len(text) > length:
        raise ValueError(f"{value} does not fit {length} digits")
    return text.zfill(length)


@dataclass(frozen=True, slots=True)
class _Entry:
    item: AchItem
    routing: str
    account: str
    code: str
    name: str


def _check_item(item: AchItem) -> _Entry | str:
    """The entry as it goes in the file, or the reason this item cannot be paid by ACH."""
    if item.currency != "USD":
        return f"currency {item.currency}: ACH pays USD only"
    try:
        check_minor_units(item.amount)
    except ValidationError as exc:
        return exc.message
    if item.amount <= 0:
        return f"amount {item.amount} cents: an ACH credit must be at least 1 cent"
    if item.amount > MAX_AMOUNT:
        return f"amount {item.amount} cents does not fit the entry's 10-digit amount field (max {MAX_AMOUNT})"
    if not item.routing_number or not item.routing_number.strip():
        return "no routing number on the partner's payout method"
    if not item.account_number or not item.account_number.strip():
        return "no account number on the partner's payout method"
    if item.account_type not in CREDIT_CODES:
        return f"account type must be checking or savings, not {item.account_type!r}"
    if item.sec_code not in (SecCode.PPD, SecCode.CCD):
        return f"SEC code must be PPD or CCD, not {item.sec_code!r}"
    try:
        routing = check_routing_number(item.routing_number)
        account = check_account_number(item.account_number)
    except PartnerpayError as exc:
        return exc.message
    name = ach_text(item.partner_name, 22)
    if not name:
        return "the account holder's name has no Latin letters or digits"
    return _Entry(item, routing, account, CREDIT_CODES[AccountType(item.account_type)], name)


def _check_originator(originator: AchOriginator) -> tuple[str, str, str]:
    """(ODFI routing, immediate destination, immediate origin) as they go in the file."""
    odfi = check_routing_number(originator.odfi_routing, field="originator.odfi_routing")
    destination = " " + check_routing_number(originator.immediate_destination, field="originator.immediate_destination")
    origin = originator.immediate_origin.strip()
    if re.fullmatch(r"\d{9}", origin):
        origin = " " + origin
    elif not re.fullmatch(r"[0-9A-Z]{10}", origin):
        raise ValidationError(
            "immediate origin must be a 9-digit routing number or the 10 characters the bank assigned",
            field="originator.immediate_origin",
        )
    if not re.fullmatch(r"[0-9A-Z]{1,10}", originator.company_id.strip()):
        raise ValidationError(
            "company identification must be 1 to 10 letters or digits, usually 1 followed by the EIN",
            field="originator.company_id",
        )
    if not ach_text(originator.company_name, 16):
        raise ValidationError("the company name needs Latin letters or digits", field="originator.company_name")
    return odfi, destination, origin


def nacha_file(
    originator: AchOriginator,
    items: Sequence[AchItem],
    *,
    file_id_modifier: str,
    created_at: datetime,
    effective_date: date,
    batch_description: str,
) -> RailFile:
    """One ACH file: a PPD batch (individuals) and/or a CCD batch (companies), credits only.
    Any bad item refuses the whole file, naming each partner. `created_at` is written as given,
    in its own time zone (pass the zone the ODFI expects, usually US Eastern)."""
    created = check_aware(created_at, "created_at")
    modifier = file_id_modifier.upper()
    if not _FILE_ID_MODIFIER.match(modifier):
        raise ValidationError("file ID modifier must be one letter A-Z or digit 0-9", field="file_id_modifier")
    description = ach_text(batch_description, 10)
    if not description or len(ascii_text(batch_description).strip()) > 10:
        raise ValidationError(
            "batch description must be 1 to 10 characters, e.g. COMMISSION", field="batch_description"
        )
    if not items:
        raise ValidationError("the batch has no payouts: there is nothing to put in an ACH file", field="items")
    odfi, destination, origin = _check_originator(originator)

    problems: list[ItemProblem] = []
    entries: dict[SecCode, list[_Entry]] = {SecCode.PPD: [], SecCode.CCD: []}
    seen: set[str] = set()
    for item in items:
        checked = "paid twice in one file" if item.payout_id in seen else _check_item(item)
        seen.add(item.payout_id)
        if isinstance(checked, str):
            problems.append(ItemProblem(item.payout_id, item.partner_id, item.partner_name, checked))
        else:
            entries[item.sec_code].append(checked)
    refuse_items("NACHA", problems)
    groups = [(sec, group) for sec, group in entries.items() if group]
    for sec, group in groups:
        if len(group) > MAX_BATCH_ENTRIES or sum(e.item.amount for e in group) > MAX_TOTAL:
            raise ValidationError(f"the {sec} batch exceeds the ACH batch limits: split the payouts", field="items")
    if len(items) > MAX_FILE_ENTRIES:
        raise ValidationError(f"more than {MAX_FILE_ENTRIES} payouts do not fit one ACH file", field="items")

    company_name = ach_text(originator.company_name, 16)
    company_id = originator.company_id.strip()
    records = [
        "1"
        + "01"
        + alpha(destination, 10)
        + alpha(origin, 10)
        + created.strftime("%y%m%d%H%M")
        + modifier
        + "094"
        + num(BLOCKING_FACTOR, 2)
        + "1"
        + alpha(ach_text(originator.immediate_destination_name, 23), 23)
        + alpha(ach_text(originator.immediate_origin_name, 23), 23)
        + alpha(ach_text(originator.reference_code, 8), 8)
    ]
    references: list[tuple[str, str]] = []
    file_hash = file_credit = file_entries = 0
    for batch_number, (sec, group) in enumerate(groups, start=1):
        records.append(
            "5"
            + CREDITS_ONLY
            + alpha(company_name, 16)
            + alpha("", 20)
            + alpha(company_id, 10)
            + sec.value
            + alpha(description, 10)
            + alpha("", 6)
            + effective_date.strftime("%y%m%d")
            + alpha("", 3)  # settlement date: the ACH operator fills it in
            + "1"
            + odfi[:8]
            + num(batch_number, 7)
        )
        batch_hash = batch_credit = 0
        for entry in group:
            file_entries += 1
            trace = odfi[:8] + num(file_entries, 7)
            references.append((entry.item.payout_id, trace))
            records.append(
                "6"
                + entry.code
                + entry.routing
                + alpha(entry.account, 17)
                + num(entry.item.amount, 10)
                # Individual ID: the payout id's last 15 characters; the trace number is the key banks return.
                + alpha(ach_text(entry.item.payout_id[-15:], 15), 15)
                + alpha(entry.name, 22)
                + alpha("", 2)
                + "0"
                + trace
            )
            batch_hash += int(entry.routing[:8])
            batch_credit += entry.item.amount
        records.append(
            "8"
            + CREDITS_ONLY
            + num(len(group), 6)
            + num(batch_hash % 10**10, 10)
            + num(0, 12)
            + num(batch_credit, 12)
            + alpha(company_id, 10)
            + alpha("", 19)
            + alpha("", 6)
            + odfi[:8]
            + num(batch_number, 7)
        )
        file_hash += batch_hash
        file_credit += batch_credit
    if file_credit > MAX_TOTAL:
        raise ValidationError("the file's total exceeds the 12-digit ACH total field: split the batch", field="items")
    blocks = -(-(len(records) + 1) // BLOCKING_FACTOR)
    records.append(
        "9"
        + num(len(groups), 6)
        + num(blocks, 6)
        + num(file_entries, 8)
        + num(file_hash % 10**10, 10)
        + num(0, 12)
        + num(file_credit, 12)
        + alpha("", 39)
    )
    records.extend("9" * RECORD_LENGTH for _ in range(blocks * BLOCKING_FACTOR - len(records)))
    assert all(len(r) == RECORD_LENGTH for r in records), "a NACHA record is not 94 characters"
    return RailFile(
        filename=f"ach-{created.strftime('%y%m%d%H%M')}{modifier}.txt",
        media_type=MEDIA_TYPE,
        content="\n".join(records) + "\n",
        control_sum=file_credit,
        count=file_entries,
        references=tuple(references),
    )
