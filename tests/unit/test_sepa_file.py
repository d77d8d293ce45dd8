"""SEPA pain.001 files: every file produced here is validated against the official ISO 20022 XSD
(the copies sepaxml 2.7.0 ships under sepaxml/schemas/, loaded here by path, not through sepa.py),
and its counts and control sums are read back from the XML and compared with the items."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.payouts.exporters.rail_items import SepaDebtor, SepaItem
from partnerpay.payouts.exporters.sepa import MAX_AMOUNT, payout_id_of, sepa_file, sepa_text

SCHEMAS = ["pain.001.001.03", "pain.001.001.09"]
XSD_DIR = files("sepaxml").joinpath("schemas")
# The SEPA Latin character set (EPC guidelines), for every text node of the file.
SEPA_CHARS = re.compile(r"^[a-zA-Z0-9/\-?:().,'+ ]*$")
VALID_IBANS = [
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "AT611904300234573201",
    "BE68539007547034",
    "FI2112345600000785",
    "IE29AIBK93115212345678",
]
DEBTOR = SepaDebtor(name="Acme Partner GmbH & Co. KG", iban="DE89 3704 0044 0532 0130 00", bic="COBADEFFXXX")
CREATED = datetime(2026, 11, 2, 9, 30, 15, tzinfo=UTC)
EXECUTION = date(2026, 11, 4)

_schemas: dict[str, xmlschema.XMLSchema] = {}


def iso_xsd(schema: str) -> xmlschema.XMLSchema:
    if schema not in _schemas:
        _schemas[schema] = xmlschema.XMLSchema(str(XSD_DIR.joinpath(f"{schema}.xsd")))
    return _schemas[schema]


def item(n: int, amount: Any = 1000, **kw: Any) -> SepaItem:
    fields: dict[str, object] = {
        "payout_id": f"pay_01jc{n:022d}",
        "partner_id": f"ptn_{n}",
        "partner_name": f"Partner {n}",
        "amount": amount,
        "currency": "EUR",
        "iban": VALID_IBANS[n % len(VALID_IBANS)],
    }
    fields.update(kw)
    return SepaItem(**fields)  # type: ignore[arg-type]


def build(items: list[SepaItem], schema: str = "pain.001.001.03", **kw: Any) -> str:
    args: dict[str, object] = {
        "schema": schema,
        "message_id": "bat_01jc0000000000000000000001",
        "created_at": CREATED,
        "execution_date": EXECUTION,
    }
    args.update(kw)
    return sepa_file(DEBTOR, items, **args).content  # type: ignore[arg-type]


def parse(content: str, schema: str) -> tuple[ET.Element, dict[str, str]]:
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{schema}"}
    # Our own output, not untrusted input.
    return ET.fromstring(content.encode()), ns  # noqa: S314


def cents(text: str) -> int:
    """A decimal amount from the file back to cents, refusing anything but 2 fraction digits."""
    assert re.fullmatch(r"\d+\.\d{2}", text), text
    value = Decimal(text) * 100
    assert value == value.to_integral_value()
    return int(value)


def reread(content: str, schema: str) -> dict[str, object]:
    root, ns = parse(content, schema)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    assert header is not None
    infos = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", ns)
    txs = [tx for info in infos for tx in info.findall("p:CdtTrfTxInf", ns)]
    return {
        "grp_count": int(header.findtext("p:NbOfTxs", namespaces=ns) or "-1"),
        "grp_sum": cents(header.findtext("p:CtrlSum", namespaces=ns) or ""),
        "inf_counts": [int(i.findtext("p:NbOfTxs", namespaces=ns) or "-1") for i in infos],
        "inf_sums": [cents(i.findtext("p:CtrlSum", namespaces=ns) or "") for i in infos],
        "amounts": [cents(tx.findtext("p:Amt/p:InstdAmt", namespaces=ns) or "") for tx in txs],
        "currencies": {tx.find("p:Amt/p:InstdAmt", ns).get("Ccy") for tx in txs},  # type: ignore[union-attr]
        "end_to_end": [tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns) for tx in txs],
        "names": [tx.findtext("p:Cdtr/p:Nm", namespaces=ns) for tx in txs],
        "ibans": [tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=ns) for tx in txs],
        "texts": [node.text for node in root.iter() if node.text],
    }


@pytest.mark.parametrize("schema", SCHEMAS)
def test_file_validates_against_the_iso_xsd_and_adds_up(schema: str) -> None:
    items = [item(1, 1), item(2, 99), item(3, 100), item(4, 123_456), item(5, MAX_AMOUNT)]
    content = build(items, schema)
    iso_xsd(schema).validate(content)
    back = reread(content, schema)
    total = 1 + 99 + 100 + 123_456 + MAX_AMOUNT
    assert back["grp_count"] == 5 and back["inf_counts"] == [5]
    assert back["grp_sum"] == total and back["inf_sums"] == [total]
    assert back["amounts"] == [1, 99, 100, 123_456, MAX_AMOUNT]
    assert back["currencies"] == {"EUR"}
    assert back["ibans"] == [i.iban for i in items]
    # Exact decimal text: 100,000,123,655 cents.
    assert "<CtrlSum>1000001236.55</CtrlSum>" in content
    assert f"urn:iso:std:iso:20022:tech:xsd:{schema}" in content


def test_the_two_schemas_differ_where_the_standard_does() -> None:
    items = [item(1, bic="ABNANL2A")]
    v03, v09 = build(items, "pain.001.001.03"), build(items, "pain.001.001.09")
    assert "<ReqdExctnDt>2026-11-04</ReqdExctnDt>" in v03
    assert "<ReqdExctnDt><Dt>2026-11-04</Dt></ReqdExctnDt>" in v09
    assert "<BIC>COBADEFFXXX</BIC>" in v03 and "<BIC>ABNANL2A</BIC>" in v03
    assert "<BICFI>COBADEFFXXX</BICFI>" in v09 and "<BICFI>ABNANL2A</BICFI>" in v09


def test_header_values_come_from_the_arguments_not_a_clock() -> None:
    first = sepa_file(
        DEBTOR, [item(1)], message_id="bat_x1", created_at=CREATED, execution_date=EXECUTION, schema="pain.001.001.03"
    )
    again = sepa_file(
        DEBTOR, [item(1)], message_id="bat_x1", created_at=CREATED, execution_date=EXECUTION, schema="pain.001.001.03"
    )
    assert first == again
    assert "<MsgId>bat-x1</MsgId>" in first.content and "<PmtInfId>bat-x1-1</PmtInfId>" in first.content
    assert "<CreDtTm>2026-11-02T09:30:15</CreDtTm>" in first.content
    assert first.filename == "bat-x1.xml" and first.media_type.startswith("application/xml")
    assert first.control_sum == 1000 and first.count == 1


def test_end_to_end_id_is_the_payout_id_and_maps_back() -> None:
    items = [item(1), item(2)]
    result = sepa_file(DEBTOR, items, message_id="bat_1", created_at=CREATED, execution_date=EXECUTION)
    back = reread(result.content, "pain.001.001.03")
    assert back["end_to_end"] == [i.payout_id.replace("_", "-") for i in items]
    assert [payout_id_of(ref) for _, ref in result.references] == [i.payout_id for i in items]


def test_names_and_remittance_are_transliterated_to_the_sepa_set() -> None:
    items = [
        item(1, partner_name="Jürgen Müller & Söhne_GmbH", remittance="Provision Nov. #42 (Müller) @web"),
        item(2, partner_name="Жанна Ødegård-Łukasz", remittance=""),
    ]
    content = build(items)
    iso_xsd("pain.001.001.03").validate(content)
    back = reread(content, "pain.001.001.03")
    assert back["names"] == ["Jurgen Muller + Sohne-GmbH", "Zhanna Odegard-Lukasz"]
    assert "<Ustrd>Provision Nov. 42 (Muller) web</Ustrd>" in content
    assert "<Ustrd>Commission payout pay-01jc0000000000000000000002</Ustrd>" in content
    assert "<Nm>Acme Partner GmbH + Co. KG</Nm>" in content
    assert all(SEPA_CHARS.match(text) for text in back["texts"])  # type: ignore[attr-defined]


def test_long_names_are_cut_to_the_field_lengths() -> None:
    assert sepa_text("x" * 200, 70) == "x" * 70
    assert sepa_text("a" * 69 + " b", 70) == "a" * 69  # no trailing space left by the cut
    content = build([item(1, partner_name="N" * 100, remittance="R" * 300)])
    iso_xsd("pain.001.001.03").validate(content)
    assert f"<Nm>{'N' * 70}</Nm>" in content and f"<Ustrd>{'R' * 140}</Ustrd>" in content


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=0, max_size=90)


@settings(max_examples=40, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=MAX_AMOUNT), min_size=1, max_size=15),
    name_list=st.lists(names, min_size=15, max_size=15),
    remittances=st.lists(names, min_size=15, max_size=15),
    schema=st.sampled_from(SCHEMAS),
)
def test_any_amounts_and_names_give_a_valid_file_that_adds_up(
    amounts: list[int], name_list: list[str], remittances: list[str], schema: str
) -> None:
    # A name that transliterates to nothing is refused (tested below): give each one a letter.
    items = [
        item(n, amount, partner_name=f"{name_list[n]} P", remittance=remittances[n]) for n, amount in enumerate(amounts)
    ]
    content = build(items, schema)
    iso_xsd(schema).validate(content)
    back = reread(content, schema)
    assert back["amounts"] == amounts
    assert back["grp_sum"] == sum(amounts) and back["inf_sums"] == [sum(amounts)]
    assert back["grp_count"] == len(amounts) and back["inf_counts"] == [len(amounts)]
    assert all(SEPA_CHARS.match(text) for text in back["texts"])  # type: ignore[attr-defined]
    assert all(0 < len(name) <= 70 for name in back["names"])  # type: ignore[attr-defined]


# --- refused -------------------------------------------------------------------------------------


def refused(items: list[SepaItem], **kw: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        build(items, **kw)
    return caught.value


def test_a_missing_iban_refuses_the_whole_file_naming_the_partner() -> None:
    error = refused([item(1), item(2, partner_name="Anna Schmidt", iban=None), item(3, iban="  ")])
    assert "2 payouts cannot go in a SEPA file, no file was produced" in error.message
    assert "partner Anna Schmidt (ptn_2, payout pay_01jc0000000000000000000002): no IBAN" in error.message
    assert [p["partner_id"] for p in error.extra["problems"]] == ["ptn_2", "ptn_3"]
    assert error.field == "items"


def test_other_currencies_are_refused_naming_the_partner() -> None:
    error = refused([item(1, currency="USD", partner_name="Bob Jones")])
    assert "partner Bob Jones (ptn_1" in error.message
    assert "currency USD: SEPA credit transfers pay EUR only" in error.message


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"iban": "DE89370400440532013001"}, "IBAN check digits do not match (DE89…3001)"),
        ({"iban": "US12345678901234"}, "IBAN must start with the code of a country"),
        ({"bic": "NOTABIC"}, "BIC must have 8 or 11 characters"),
        ({"amount": 0}, "outside the SEPA range"),
        ({"amount": MAX_AMOUNT + 1}, "outside the SEPA range"),
        ({"amount": -5}, "must not be negative"),
        ({"amount": 12.5}, "must be an integer number of minor units"),
        ({"partner_name": "😀 🎉"}, "no Latin letters or digits"),
        ({"payout_id": "pay_" + "x" * 40}, "cannot be a SEPA identifier"),
    ],
)
def test_bad_items_are_refused_with_the_reason(bad: dict[str, Any], reason: str) -> None:
    error = refused([item(7, **{"partner_name": "Carla Rossi", **bad})])
    assert reason in error.message
    assert "(ptn_7, payout" in error.message


def test_every_bad_item_is_listed_at_once() -> None:
    error = refused([item(n, currency="GBP") for n in range(25)])
    assert error.message.startswith("25 payouts cannot go in a SEPA file")
    assert error.message.endswith("; and 15 more")
    assert len(error.extra["problems"]) == 25


def test_the_same_payout_twice_is_refused() -> None:
    error = refused([item(1), item(1)])
    assert "paid twice in one file" in error.message


def test_bad_file_arguments_are_refused() -> None:
    with pytest.raises(ValidationError, match="nothing to put in a SEPA file"):
        build([])
    with pytest.raises(ValidationError, match="schema must be one of"):
        build([item(1)], schema="pain.001.001.02")
    with pytest.raises(ValidationError, match="timezone-aware"):
        build([item(1)], created_at=datetime(2026, 11, 2, 9, 30))
    with pytest.raises(ValidationError, match="cannot be a SEPA identifier"):
        build([item(1)], message_id="m" * 36)
    with pytest.raises(ValidationError, match="IBAN check digits"):
        sepa_file(
            SepaDebtor("Acme", "DE00370400440532013000"),
            [item(1)],
            message_id="m1",
            created_at=CREATED,
            execution_date=EXECUTION,
        )


def test_debtor_without_bic_is_identified_as_not_provided() -> None:
    content = sepa_file(
        SepaDebtor("Acme", VALID_IBANS[1]), [item(1)], message_id="m1", created_at=CREATED, execution_date=EXECUTION
    ).content
    iso_xsd("pain.001.001.03").validate(content)
    assert "<DbtrAgt><FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId></DbtrAgt>" in content


def test_skipping_validation_gives_the_same_file() -> None:
    items = [item(n, 100 + n) for n in range(5)]
    assert build(items, validate=False) == build(items, validate=True)
