"""NACHA ACH files, read back by an independent reader written here from the record layouts in
../shared/PROVIDERS.md §6 (1-based positions), without any helper of nacha.py: every record's
length, order, totals, counts, entry hashes, check digits, trace numbers and blocking are
recomputed from the parsed fields, and the amounts and accounts must round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.payouts.exporters.nacha import nacha_file
from partnerpay.payouts.exporters.rail_items import AchItem, AchOriginator, SecCode

ORIGINATOR = AchOriginator(
    company_name="Acme Partners Incorporated",
    company_id="1234567890",
    odfi_routing="091000019",
    immediate_destination="021000021",
    immediate_origin="1234567890",
    immediate_destination_name="JPMorgan Chase",
    immediate_origin_name="Acme Partners",
    reference_code="PP",
)
EASTERN = timezone(timedelta(hours=-5))
CREATED = datetime(2026, 11, 2, 9, 5, tzinfo=EASTERN)
EFFECTIVE = date(2026, 11, 4)


# --- the independent reader ----------------------------------------------------------------------


def pos(record: str, start: int, end: int) -> str:
    """Field at 1-based inclusive positions, as the NACHA layouts number them."""
    return record[start - 1 : end]


def aba_check_digit(first8: str) -> int:
    weights = [3, 7, 1, 3, 7, 1, 3, 7]
    return (10 - sum(int(d) * w for d, w in zip(first8, weights, strict=True)) % 10) % 10


@dataclass
class Entry:
    code: str
    routing: str
    account: str
    amount: int
    individual_id: str
    name: str
    trace: str


@dataclass
class Batch:
    sec: str
    number: int
    company_id: str
    effective: str
    entries: list[Entry] = field(default_factory=list)


@dataclass
class AchFile:
    header: str
    batches: list[Batch]
    control: str
    lines: list[str]


def read_ach(content: str) -> AchFile:
    """Parse and check the file; every assertion is a rule of the format."""
    assert content.endswith("\n")
    lines = content[:-1].split("\n")
    assert all(len(line) == 94 for line in lines), "every record is 94 characters"
    assert len(lines) % 10 == 0, "blocking factor 10"
    header = lines[0]
    assert pos(header, 1, 1) == "1" and pos(header, 2, 3) == "01"
    assert pos(header, 35, 37) == "094" and pos(header, 38, 39) == "10" and pos(header, 40, 40) == "1"
    assert pos(header, 4, 4) == " " and pos(header, 5, 13).isdigit()

    batches: list[Batch] = []
    i = 1
    hash_total = credit_total = entry_count = 0
    traces: list[str] = []
    odfi = ""
    while pos(lines[i], 1, 1) == "5":
        bh = lines[i]
        assert pos(bh, 2, 4) == "220", "credits only"
        odfi = pos(bh, 80, 87)
        batch = Batch(pos(bh, 51, 53), int(pos(bh, 88, 94)), pos(bh, 41, 50), pos(bh, 70, 75))
        assert pos(bh, 76, 78) == "   " and pos(bh, 79, 79) == "1"
        i += 1
        batch_hash = batch_credit = 0
        while pos(lines[i], 1, 1) == "6":
            e = lines[i]
            routing8, check = pos(e, 4, 11), pos(e, 12, 12)
            assert int(check) == aba_check_digit(routing8), "RDFI check digit"
            assert pos(e, 79, 79) == "0", "no addenda"
            assert pos(e, 30, 39).isdigit()
            entry = Entry(
                code=pos(e, 2, 3),
                routing=routing8 + check,
                account=pos(e, 13, 29).rstrip(),
                amount=int(pos(e, 30, 39)),
                individual_id=pos(e, 40, 54).rstrip(),
                name=pos(e, 55, 76).rstrip(),
                trace=pos(e, 80, 94),
            )
            assert entry.code in {"22", "32"}, "credit to checking or savings"
            assert pos(e, 13, 29) == entry.account.ljust(17), "account left-justified"
            assert entry.trace[:8] == odfi
            traces.append(entry.trace)
            batch_hash += int(routing8)
            batch_credit += entry.amount
            batch.entries.append(entry)
            i += 1
        bc = lines[i]
        assert pos(bc, 1, 1) == "8" and pos(bc, 2, 4) == "220"
        assert int(pos(bc, 5, 10)) == len(batch.entries)
        assert int(pos(bc, 11, 20)) == batch_hash % 10**10
        assert int(pos(bc, 21, 32)) == 0
        assert int(pos(bc, 33, 44)) == batch_credit
        assert pos(bc, 45, 54) == batch.company_id
        assert pos(bc, 55, 79) == " " * 25
        assert pos(bc, 80, 87) == odfi and int(pos(bc, 88, 94)) == batch.number
        hash_total += batch_hash % 10**10
        credit_total += batch_credit
        entry_count += len(batch.entries)
        batches.append(batch)
        i += 1
    control = lines[i]
    assert pos(control, 1, 1) == "9"
    assert int(pos(control, 2, 7)) == len(batches)
    assert int(pos(control, 8, 13)) == len(lines) // 10
    assert int(pos(control, 14, 21)) == entry_count
    assert int(pos(control, 22, 31)) == hash_total % 10**10
    assert int(pos(control, 32, 43)) == 0
    assert int(pos(control, 44, 55)) == credit_total
    assert pos(control, 56, 94) == " " * 39
    padding = lines[i + 1 :]
    assert all(line == "9" * 94 for line in padding) and len(padding) < 10
    assert [b.number for b in batches] == list(range(1, len(batches) + 1))
    assert len(set(traces)) == len(traces) and traces == sorted(traces), "trace numbers unique and ascending"
    return AchFile(header, batches, control, lines)


# --- items ---------------------------------------------------------------------------------------


def rtn(first8: str) -> str:
    return first8 + str(aba_check_digit(first8))


def item(n: int, amount: Any = 1000, **kw: Any) -> AchItem:
    fields: dict[str, Any] = {
        "payout_id": f"pay_01jc{n:022d}",
        "partner_id": f"ptn_{n}",
        "partner_name": f"Partner {n}",
        "amount": amount,
        "currency": "USD",
        "routing_number": rtn(f"{(n * 7919) % 10**8:08d}"),
        "account_number": f"{1000 + n}",
        "account_type": "checking",
        "sec_code": SecCode.PPD,
    }
    fields.update(kw)
    return AchItem(**fields)


def build(items: list[AchItem], **kw: Any) -> str:
    args: dict[str, Any] = {
        "file_id_modifier": "A",
        "created_at": CREATED,
        "effective_date": EFFECTIVE,
        "batch_description": "Commission",
    }
    args.update(kw)
    return nacha_file(ORIGINATOR, items, **args).content


def test_a_mixed_file_has_one_batch_per_sec_code_and_every_total_checks() -> None:
    items = [
        item(1, 12_345, partner_name="José Núñez"),
        item(2, 9_999_999_999, sec_code=SecCode.CCD, partner_name="Big Co LLC", account_type="savings"),
        item(3, 1, account_type="savings", account_number="12345678901234567"),
        item(4, 500, sec_code=SecCode.CCD),
    ]
    result = nacha_file(
        ORIGINATOR,
        items,
        file_id_modifier="b",
        created_at=CREATED,
        effective_date=EFFECTIVE,
        batch_description="Commission",
    )
    parsed = read_ach(result.content)
    assert [b.sec for b in parsed.batches] == ["PPD", "CCD"]
    ppd, ccd = parsed.batches
    assert [(e.code, e.amount, e.account, e.name) for e in ppd.entries] == [
        ("22", 12_345, "1001", "JOSE NUNEZ"),
        ("32", 1, "12345678901234567", "PARTNER 3"),
    ]
    assert [(e.code, e.amount, e.name) for e in ccd.entries] == [
        ("32", 9_999_999_999, "BIG CO LLC"),
        ("22", 500, "PARTNER 4"),
    ]
    assert result.control_sum == 12_345 + 9_999_999_999 + 1 + 500 and result.count == 4
    # File header: destination, origin, created 2026-11-02 09:05 in the zone given, modifier upper-cased.
    assert pos(parsed.header, 4, 13) == " 021000021" and pos(parsed.header, 14, 23) == "1234567890"
    assert pos(parsed.header, 24, 34) == "2611020905B"
    assert pos(parsed.header, 41, 63) == "JPMORGAN CHASE".ljust(23)
    assert pos(parsed.lines[1], 5, 20) == "ACME PARTNERS IN"
    assert pos(parsed.lines[1], 54, 63) == "COMMISSION" and ppd.effective == "261104"
    assert pos(parsed.lines[1], 80, 87) == "09100001"
    # Traces run through the file in order; the references map them back to the payouts.
    assert dict(result.references) == {
        items[0].payout_id: "091000010000001",
        items[2].payout_id: "091000010000002",
        items[1].payout_id: "091000010000003",
        items[3].payout_id: "091000010000004",
    }
    assert len(parsed.lines) == 10 and result.filename == "ach-2611020905B.txt"


def test_the_entry_hash_keeps_the_rightmost_ten_digits() -> None:
    # 150 routing numbers of 99999999x sum to 14,999,999,850: the hash must drop the leading 1.
    items = [item(n, 100, routing_number=rtn("99999999")) for n in range(150)]
    parsed = read_ach(build(items))
    control = next(line for line in parsed.lines if line.startswith("9") and line != "9" * 94)
    assert pos(control, 22, 31) == "4999999850"
    assert len(parsed.lines) == 160 and int(pos(control, 8, 13)) == 16


def test_a_file_of_exactly_ten_records_has_no_padding() -> None:
    # 1 + 5 + six 6s + 8 + 9 = 10 records.
    lines = read_ach(build([item(n) for n in range(6)])).lines
    assert len(lines) == 10 and "9" * 94 not in lines


ach_items = st.builds(
    lambda n, amount, routing8, account, kind, sec, name: item(
        n,
        amount,
        routing_number=rtn(routing8),
        account_number=account,
        account_type=kind,
        sec_code=sec,
        partner_name=name + " X",
    ),
    n=st.integers(min_value=0, max_value=10**6),
    amount=st.integers(min_value=1, max_value=9_999_999_999),
    routing8=st.text("0123456789", min_size=8, max_size=8),
    account=st.text("0123456789", min_size=4, max_size=17),
    kind=st.sampled_from(["checking", "savings"]),
    sec=st.sampled_from([SecCode.PPD, SecCode.CCD]),
    name=st.text(max_size=40),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(ach_items, min_size=1, max_size=40, unique_by=lambda i: i.payout_id))
def test_any_items_round_trip_through_the_reader(items: list[AchItem]) -> None:
    result = nacha_file(
        ORIGINATOR,
        items,
        file_id_modifier="7",
        created_at=CREATED,
        effective_date=EFFECTIVE,
        batch_description="PAYOUT",
    )
    parsed = read_ach(result.content)
    expected = [i for i in items if i.sec_code == SecCode.PPD] + [i for i in items if i.sec_code == SecCode.CCD]
    entries = [e for b in parsed.batches for e in b.entries]
    assert [(e.routing, e.account, e.amount) for e in entries] == [
        (i.routing_number, i.account_number, i.amount) for i in expected
    ]
    assert [e.code for e in entries] == ["22" if i.account_type == "checking" else "32" for i in expected]
    assert all(e.name and e.name == e.name.upper() and e.name.isascii() for e in entries)
    assert [b.sec for b in parsed.batches] == [s for s in ("PPD", "CCD") if any(i.sec_code == s for i in items)]
    assert result.control_sum == sum(i.amount for i in items) and result.count == len(items)
    assert [trace for _, trace in result.references] == [e.trace for e in entries]


# --- refused -------------------------------------------------------------------------------------


def refused(items: list[AchItem], **kw: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        build(items, **kw)
    return caught.value


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"currency": "EUR"}, "currency EUR: ACH pays USD only"),
        ({"routing_number": "021000022"}, "routing number check digit does not match (021000022)"),
        ({"routing_number": "12345"}, "routing number must have 9 digits"),
        ({"routing_number": None}, "no routing number"),
        ({"account_number": None}, "no account number"),
        ({"account_number": " "}, "no account number"),
        ({"account_number": "123456789012345678"}, "account number must be 4 to 17 digits"),
        ({"amount": 10_000_000_000}, "does not fit the entry's 10-digit amount field"),
        ({"amount": 0}, "at least 1 cent"),
        ({"amount": 1.5}, "must be an integer number of minor units"),
        ({"account_type": "brokerage"}, "account type must be checking or savings"),
        ({"partner_name": "😀 🎉"}, "no Latin letters or digits"),
    ],
)
def test_bad_items_are_refused_naming_the_partner(bad: dict[str, Any], reason: str) -> None:
    named = {"partner_name": "Dana White", **bad}
    error = refused([item(1), item(2, **named)])
    assert error.message.startswith("1 payout cannot go in a NACHA file, no file was produced")
    assert reason in error.message
    assert "(ptn_2, payout pay_01jc0000000000000000000002)" in error.message
    assert f"partner {named['partner_name']} (ptn_2" in error.message
    assert error.extra["problems"][0]["partner_id"] == "ptn_2"


def test_bad_file_arguments_are_refused() -> None:
    with pytest.raises(ValidationError, match="file ID modifier"):
        build([item(1)], file_id_modifier="AB")
    with pytest.raises(ValidationError, match="batch description"):
        build([item(1)], batch_description="COMMISSIONS PAID")
    with pytest.raises(ValidationError, match="timezone-aware"):
        build([item(1)], created_at=datetime(2026, 11, 2, 9, 5))
    with pytest.raises(ValidationError, match="nothing to put in an ACH file"):
        build([])
    with pytest.raises(ValidationError, match="paid twice"):
        build([item(1), item(1)])
    bad_odfi = AchOriginator("Acme", "1234567890", "091000018", "021000021", "1234567890")
    with pytest.raises(ValidationError, match="check digit") as caught:
        nacha_file(
            bad_odfi,
            [item(1)],
            file_id_modifier="A",
            created_at=CREATED,
            effective_date=EFFECTIVE,
            batch_description="X",
        )
    assert caught.value.field == "originator.odfi_routing"


def test_created_at_is_written_in_its_own_zone() -> None:
    utc = read_ach(build([item(1)], created_at=CREATED.astimezone(UTC))).header
    assert pos(utc, 24, 33) == "2611021405"
