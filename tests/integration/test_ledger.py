"""Double-entry ledger on a real database: balanced or refused, append-only, balances maintained."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import UnbalancedEntry, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.ledger.models import AccountKind, LedgerAccount, LedgerPosting, LedgerTransaction
from partnerpay.ledger.service import (
    Entry,
    Leg,
    balance,
    check_entry,
    ensure_accounts,
    post,
    reverse,
    transfer,
)
from partnerpay.programs.models import Program

EXPENSE = AccountKind.COMMISSION_EXPENSE
PAYABLE = AccountKind.PARTNER_PAYABLE
CLEARING = AccountKind.PAYOUT_CLEARING
CASH = AccountKind.CASH


def make_program(session: Session, now: datetime, *, currency: str = "EUR") -> str:
    program = Program(
        id=new_id("prg"),
        name="Test program",
        currency=currency,
        hold_days=30,
        default_percent_bp=1000,
        cookie_days=30,
        rounding="half_even",
        created_at=now,
    )
    session.add(program)
    session.flush()
    return program.id


def accrual(program_id: str, partner_id: str, amount: int, currency: str = "EUR") -> Entry:
    """A commission earned: the program's expense grows, so does what it owes the partner."""
    return transfer(
        kind="commission",
        ref_type="commission_line",
        ref_id=new_id("com"),
        currency=currency,
        amount=amount,
        debit=(program_id, EXPENSE),
        credit=(partner_id, PAYABLE),
    )


def count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def row_counts(session: Session) -> tuple[int, int, int]:
    return count(session, LedgerTransaction), count(session, LedgerPosting), count(session, LedgerAccount)


@pytest.fixture
def program_id(session: Session, clock: FixedClock) -> str:
    pid = make_program(session, clock.now())
    session.commit()
    return pid


class TestTransfer:
    def test_debits_one_account_and_credits_the_other_by_the_same_amount(self) -> None:
        entry = transfer(
            kind="commission",
            ref_type="commission_line",
            ref_id="com_1",
            currency="EUR",
            amount=1250,
            debit=("prg_1", EXPENSE),
            credit=("ptn_1", PAYABLE),
            memo="10 % of invoice 42",
        )

        assert entry.legs == (Leg("prg_1", EXPENSE, 1250, "EUR"), Leg("ptn_1", PAYABLE, -1250, "EUR"))
        assert entry.memo == "10 % of invoice 42"
        assert entry.id.startswith("ltx_")

    def test_every_entry_gets_its_own_id(self) -> None:
        assert accrual("prg_1", "ptn_1", 1).id != accrual("prg_1", "ptn_1", 1).id


class TestCheckEntry:
    def test_a_balanced_multi_leg_entry_passes(self) -> None:
        legs = (
            Leg("prg_1", EXPENSE, 1000, "EUR"),
            Leg("ptn_1", PAYABLE, -700, "EUR"),
            Leg("ptn_2", PAYABLE, -300, "EUR"),
        )

        check_entry(Entry(kind="commission", ref_type="event", ref_id="evt_1", legs=legs))

    @pytest.mark.parametrize(
        ("legs", "field"),
        [
            ((Leg("a", EXPENSE, 100, "EUR"), Leg("b", PAYABLE, -99, "EUR")), "legs"),
            ((Leg("a", EXPENSE, 0, "EUR"),), "legs"),
            ((), "legs"),
            ((Leg("a", EXPENSE, 100, "EUR"), Leg("b", PAYABLE, -100, "USD")), "currency"),
            ((Leg("a", EXPENSE, 1.5, "EUR"), Leg("b", PAYABLE, -1.5, "EUR")), "amount"),  # type: ignore[arg-type]
            ((Leg("a", EXPENSE, True, "EUR"), Leg("b", PAYABLE, -1, "EUR")), "amount"),
        ],
        ids=["unbalanced", "single_leg", "no_legs", "mixed_currency", "float_amount", "bool_amount"],
    )
    def test_a_bad_entry_is_refused_naming_what_is_wrong(self, legs: tuple[Leg, ...], field: str) -> None:
        with pytest.raises(UnbalancedEntry) as info:
            check_entry(Entry(kind="commission", ref_type="event", ref_id="evt_1", legs=legs))

        assert info.value.field == field

    def test_an_unknown_currency_is_refused(self) -> None:
        legs = (Leg("a", EXPENSE, 100, "eur"), Leg("b", PAYABLE, -100, "eur"))

        with pytest.raises(ValidationError):
            check_entry(Entry(kind="commission", ref_type="event", ref_id="evt_1", legs=legs))


BAD_ENTRIES = {
    "unbalanced": (Leg("prg", EXPENSE, 1000, "EUR"), Leg("ptn_bad", PAYABLE, -999, "EUR")),
    "single_leg": (Leg("prg", EXPENSE, 1000, "EUR"),),
    "mixed_currency": (Leg("prg", EXPENSE, 1000, "EUR"), Leg("ptn_bad", PAYABLE, -1000, "USD")),
    "float_amount": (Leg("prg", EXPENSE, 10.5, "EUR"), Leg("ptn_bad", PAYABLE, -10.5, "EUR")),  # type: ignore[arg-type]
}


class TestPost:
    def test_balanced_transfers_update_the_maintained_balances(
        self, session: Session, session_factory: sessionmaker[Session], program_id: str, clock: FixedClock
    ) -> None:
        entries = [
            accrual(program_id, "ptn_a", 1000),
            accrual(program_id, "ptn_b", 250),
            transfer(
                kind="payout",
                ref_type="payout",
                ref_id=new_id("pay"),
                currency="EUR",
                amount=600,
                debit=("ptn_a", PAYABLE),
                credit=(program_id, CLEARING),
            ),
        ]

        post(session, program_id=program_id, entries=entries, now=clock.now())
        session.commit()

        with session_factory() as fresh:
            assert balance(fresh, program_id, program_id, EXPENSE, "EUR") == 1250
            assert balance(fresh, program_id, "ptn_a", PAYABLE, "EUR") == -400
            assert balance(fresh, program_id, "ptn_b", PAYABLE, "EUR") == -250
            assert balance(fresh, program_id, program_id, CLEARING, "EUR") == -600

    def test_writes_one_transaction_and_one_posting_per_leg(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        entry = Entry(
            kind="commission",
            ref_type="event",
            ref_id="evt_1",
            memo="split deal",
            legs=(
                Leg(program_id, EXPENSE, 1000, "EUR"),
                Leg("ptn_a", PAYABLE, -700, "EUR"),
                Leg("ptn_b", PAYABLE, -300, "EUR"),
            ),
        )

        ids = post(session, program_id=program_id, entries=[entry], now=clock.now())
        session.commit()

        assert ids == [entry.id]
        tx = session.get(LedgerTransaction, entry.id)
        assert tx is not None
        assert (tx.program_id, tx.kind, tx.ref_type, tx.ref_id, tx.memo) == (
            program_id,
            "commission",
            "event",
            "evt_1",
            "split deal",
        )
        assert tx.created_at == clock.now()
        postings = session.execute(
            select(LedgerAccount.owner_id, LedgerPosting.amount, LedgerPosting.currency)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerPosting.transaction_id == entry.id)
            .order_by(LedgerPosting.amount)
        ).all()
        assert [tuple(p) for p in postings] == [
            ("ptn_a", -700, "EUR"),
            ("ptn_b", -300, "EUR"),
            (program_id, 1000, "EUR"),
        ]

    def test_each_currency_has_its_own_account(self, session: Session, program_id: str, clock: FixedClock) -> None:
        post(
            session,
            program_id=program_id,
            entries=[accrual(program_id, "ptn_a", 1000, "EUR"), accrual(program_id, "ptn_a", 500, "USD")],
            now=clock.now(),
        )
        session.commit()

        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == -1000
        assert balance(session, program_id, "ptn_a", PAYABLE, "USD") == -500
        assert balance(session, program_id, "ptn_a", PAYABLE, "JPY") == 0

    def test_the_same_owner_in_two_programs_has_separate_balances(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        other = make_program(session, clock.now())

        post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", 1000)], now=clock.now())
        post(session, program_id=other, entries=[accrual(other, "ptn_a", 30)], now=clock.now())
        session.commit()

        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == -1000
        assert balance(session, other, "ptn_a", PAYABLE, "EUR") == -30

    def test_balances_accumulate_over_separate_transactions(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        for amount in (100, 200, 300):
            post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", amount)], now=clock.now())
            session.commit()

        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == -600
        assert count(session, LedgerAccount) == 2

    def test_no_entries_writes_nothing(self, session: Session, program_id: str, clock: FixedClock) -> None:
        assert post(session, program_id=program_id, entries=[], now=clock.now()) == []
        assert row_counts(session) == (0, 0, 0)

    @pytest.mark.parametrize("bad", list(BAD_ENTRIES))
    def test_a_bad_entry_is_refused_and_nothing_is_written(
        self, session: Session, program_id: str, clock: FixedClock, bad: str
    ) -> None:
        good = accrual(program_id, "ptn_good", 500)
        wrong = Entry(kind="commission", ref_type="event", ref_id="evt_bad", legs=BAD_ENTRIES[bad])

        with pytest.raises(UnbalancedEntry):
            post(session, program_id=program_id, entries=[good, wrong], now=clock.now())

        # Not even the good entry of the batch, and no account: nothing to roll back.
        assert row_counts(session) == (0, 0, 0)
        session.rollback()
        assert row_counts(session) == (0, 0, 0)
        assert balance(session, program_id, "ptn_good", PAYABLE, "EUR") == 0

    def test_a_refused_entry_leaves_earlier_postings_untouched(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", 500)], now=clock.now())
        session.commit()
        wrong = Entry(kind="commission", ref_type="event", ref_id="evt_bad", legs=BAD_ENTRIES["unbalanced"])

        with pytest.raises(UnbalancedEntry):
            post(session, program_id=program_id, entries=[wrong], now=clock.now())
        session.rollback()

        assert row_counts(session) == (1, 2, 2)
        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == -500

    def test_a_database_failure_leaves_nothing_after_rollback(self, session: Session, clock: FixedClock) -> None:
        missing_program = new_id("prg")

        with pytest.raises(DBAPIError):
            post(
                session,
                program_id=missing_program,
                entries=[accrual(missing_program, "ptn_a", 500)],
                now=clock.now(),
            )
        session.rollback()

        assert row_counts(session) == (0, 0, 0)

    def test_accounts_created_in_a_rolled_back_transaction_are_created_again(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", 500)], now=clock.now())
        session.rollback()

        post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", 700)], now=clock.now())
        session.commit()

        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == -700
        assert row_counts(session) == (1, 2, 2)

    def test_a_large_batch_is_written_in_full(self, session: Session, program_id: str, clock: FixedClock) -> None:
        # 300 entries, 600 postings: above the bulk threshold (COPY on PostgreSQL).
        entries = [accrual(program_id, f"ptn_{i % 7}", 100 + i) for i in range(300)]

        post(session, program_id=program_id, entries=entries, now=clock.now())
        session.commit()

        assert row_counts(session) == (300, 600, 8)
        assert balance(session, program_id, program_id, EXPENSE, "EUR") == sum(100 + i for i in range(300))
        assert balance(session, program_id, "ptn_3", PAYABLE, "EUR") == -sum(100 + i for i in range(3, 300, 7))


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE ledger_postings SET amount = amount + 1",
            "DELETE FROM ledger_postings",
            "UPDATE ledger_transactions SET memo = 'edited'",
            "DELETE FROM ledger_transactions",
        ],
    )
    def test_postings_and_transactions_cannot_be_changed_in_the_database(
        self, session: Session, program_id: str, clock: FixedClock, statement: str
    ) -> None:
        entry = accrual(program_id, "ptn_a", 500)
        entry = Entry(kind=entry.kind, ref_type=entry.ref_type, ref_id=entry.ref_id, legs=entry.legs, memo="kept")
        post(session, program_id=program_id, entries=[entry], now=clock.now())
        session.commit()

        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
            session.flush()
        session.rollback()

        amounts = session.scalars(select(LedgerPosting.amount).order_by(LedgerPosting.amount)).all()
        assert amounts == [-500, 500]
        assert session.scalar(select(LedgerTransaction.memo)) == "kept"

    def test_a_single_row_update_is_refused_too(self, session: Session, program_id: str, clock: FixedClock) -> None:
        post(session, program_id=program_id, entries=[accrual(program_id, "ptn_a", 500)], now=clock.now())
        session.commit()
        posting_id = session.scalar(select(func.min(LedgerPosting.id)))

        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("UPDATE ledger_postings SET amount = 0 WHERE id = :id"), {"id": posting_id})
        session.rollback()

        assert session.scalar(select(LedgerPosting.amount).where(LedgerPosting.id == posting_id)) != 0


class TestReverse:
    def test_negates_every_leg_and_points_back_at_the_original(self) -> None:
        original = Entry(
            kind="commission",
            ref_type="event",
            ref_id="evt_1",
            legs=(
                Leg("prg", EXPENSE, 1000, "EUR"),
                Leg("ptn_a", PAYABLE, -700, "EUR"),
                Leg("ptn_b", PAYABLE, -300, "EUR"),
            ),
        )

        correction = reverse(original.id, original, ref_type="event", ref_id="evt_1", memo="posted twice")

        assert correction.kind == "reversal"
        assert correction.reverses_id == original.id
        assert correction.id != original.id
        assert correction.memo == "posted twice"
        assert [leg.amount for leg in correction.legs] == [-1000, 700, 300]
        assert [(leg.owner_id, leg.kind, leg.currency) for leg in correction.legs] == [
            (leg.owner_id, leg.kind, leg.currency) for leg in original.legs
        ]
        check_entry(correction)

    def test_posting_the_reversal_brings_balances_back_to_zero(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        original = accrual(program_id, "ptn_a", 1250)
        post(session, program_id=program_id, entries=[original], now=clock.now())
        session.commit()

        correction = reverse(original.id, original, ref_type="commission_line", ref_id="com_x", memo="mistake")
        post(session, program_id=program_id, entries=[correction], now=clock.now())
        session.commit()

        assert balance(session, program_id, program_id, EXPENSE, "EUR") == 0
        assert balance(session, program_id, "ptn_a", PAYABLE, "EUR") == 0
        stored = session.get(LedgerTransaction, correction.id)
        assert stored is not None
        assert stored.reverses_id == original.id
        assert stored.kind == "reversal"
        # The mistake stays in the history; the correction is a second transaction.
        assert count(session, LedgerTransaction) == 2
        assert count(session, LedgerPosting) == 4


class TestBalance:
    def test_an_account_that_does_not_exist_has_a_zero_balance(self, session: Session, program_id: str) -> None:
        assert balance(session, program_id, "ptn_nobody", PAYABLE, "EUR") == 0


class TestEnsureAccounts:
    def test_creates_an_account_once_and_returns_the_same_id_later(
        self, session: Session, session_factory: sessionmaker[Session], program_id: str, clock: FixedClock
    ) -> None:
        key = ("ptn_a", PAYABLE, "EUR")
        first = ensure_accounts(session, program_id, [key], clock.now())
        session.commit()

        with session_factory() as other:
            again = ensure_accounts(other, program_id, [key], clock.now())
            other.commit()

        assert again == first
        assert count(session, LedgerAccount) == 1
        account = session.get(LedgerAccount, first[key])
        assert account is not None
        assert (account.program_id, account.owner_id, account.kind, account.currency, account.balance) == (
            program_id,
            "ptn_a",
            "partner_payable",
            "EUR",
            0,
        )

    def test_each_kind_and_currency_is_a_separate_account(
        self, session: Session, program_id: str, clock: FixedClock
    ) -> None:
        keys = [("ptn_a", PAYABLE, "EUR"), ("ptn_a", PAYABLE, "USD"), ("ptn_a", CASH, "EUR"), ("ptn_b", PAYABLE, "EUR")]

        ids = ensure_accounts(session, program_id, keys, clock.now())
        session.commit()

        assert set(ids) == set(keys)
        assert len(set(ids.values())) == 4
        assert count(session, LedgerAccount) == 4

    def test_another_program_gets_its_own_account(self, session: Session, program_id: str, clock: FixedClock) -> None:
        other = make_program(session, clock.now())
        key = ("ptn_a", PAYABLE, "EUR")

        mine = ensure_accounts(session, program_id, [key], clock.now())[key]
        theirs = ensure_accounts(session, other, [key], clock.now())[key]
        session.commit()

        assert mine != theirs
        assert count(session, LedgerAccount) == 2

    def test_a_mix_of_existing_and_new_keys_creates_only_the_new_ones(
        self, session: Session, session_factory: sessionmaker[Session], program_id: str, clock: FixedClock
    ) -> None:
        old = ("ptn_a", PAYABLE, "EUR")
        new = ("ptn_a", CASH, "EUR")
        first = ensure_accounts(session, program_id, [old], clock.now())
        session.commit()

        with session_factory() as other:
            both = ensure_accounts(other, program_id, [old, new], clock.now())
            other.commit()

        assert both[old] == first[old]
        assert count(session, LedgerAccount) == 2


# --- properties over random histories --------------------------------------------------------

OWNERS = [("prg_self", EXPENSE), ("prg_self", CLEARING), ("prg_self", CASH), ("ptn_a", PAYABLE), ("ptn_b", PAYABLE)]


@st.composite
def balanced_entries(draw: st.DrawFn) -> Entry:
    currency = draw(st.sampled_from(["EUR", "JPY", "BHD"]))
    size = draw(st.integers(min_value=2, max_value=5))
    accounts = draw(st.lists(st.sampled_from(OWNERS), min_size=size, max_size=size))
    amounts = draw(st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=size - 1, max_size=size - 1))
    amounts.append(-sum(amounts))
    legs = tuple(Leg(owner, kind, amount, currency) for (owner, kind), amount in zip(accounts, amounts, strict=True))
    return Entry(kind="test", ref_type="test", ref_id=draw(st.text("abc123", min_size=1, max_size=8)), legs=legs)


histories = st.lists(
    st.tuples(st.lists(balanced_entries(), min_size=1, max_size=4), st.booleans()), min_size=1, max_size=5
)


class TestLedgerProperties:
    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(history=histories)
    def test_random_balanced_histories_keep_the_books_consistent(
        self, session: Session, clock: FixedClock, history: list[tuple[list[Entry], bool]]
    ) -> None:
        # The database lives across examples: each example is its own program.
        program_id = make_program(session, clock.now())
        session.commit()
        expected: dict[tuple[str, AccountKind, str], int] = defaultdict(int)
        posted = 0

        for entries, reverse_first in history:
            batch = list(entries)
            if reverse_first:
                batch.append(reverse(entries[0].id, entries[0], ref_type="test", ref_id="undo", memo=""))
            post(session, program_id=program_id, entries=batch, now=clock.now())
            session.commit()
            posted += len(batch)
            for entry in batch:
                for leg in entry.legs:
                    expected[(leg.owner_id, leg.kind, leg.currency)] += leg.amount

        per_currency = session.execute(
            select(LedgerAccount.currency, func.sum(LedgerAccount.balance))
            .where(LedgerAccount.program_id == program_id)
            .group_by(LedgerAccount.currency)
        ).all()
        assert per_currency, "the history posted nothing"
        totals = {currency: int(total) for currency, total in per_currency}
        assert totals == dict.fromkeys(totals, 0)

        recomputed = (
            select(LedgerPosting.account_id, func.sum(LedgerPosting.amount).label("total"))
            .group_by(LedgerPosting.account_id)
            .subquery()
        )
        rows = session.execute(
            select(LedgerAccount.id, LedgerAccount.balance, func.coalesce(recomputed.c.total, 0))
            .outerjoin(recomputed, recomputed.c.account_id == LedgerAccount.id)
            .where(LedgerAccount.program_id == program_id)
        ).all()
        assert [(acc, int(kept)) for acc, kept, _ in rows] == [(acc, int(total)) for acc, _, total in rows]

        for (owner, kind, currency), amount in expected.items():
            assert balance(session, program_id, owner, kind, currency) == amount
        assert len(rows) == len(expected)
        assert (
            session.scalar(
                select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.program_id == program_id)
            )
            == posted
        )
