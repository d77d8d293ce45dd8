"""customer_context's look-up (the earliest payment remembered per customer) answers as a scan of the payments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.commissions.engine_inputs import CustomerContext, EventFacts
from partnerpay.commissions.history import History, customer_context, whole_months

BASE = datetime(2026, 1, 31, 12, tzinfo=UTC)


def scanned(history: History, event: EventFacts, paying: bool) -> CustomerContext:
    paid = history.customer_paid.get(event.customer_id, ())
    earlier = [t for i, t in paid if t <= event.occurred_at and i != event.id]
    first = min([*earlier, event.occurred_at]) if (earlier or paying) else None
    if first is None:
        return CustomerContext()
    return CustomerContext(first, paying and not earlier, whole_months(first, event.occurred_at))


days = st.integers(min_value=-400, max_value=400).map(lambda d: BASE + timedelta(days=d))
steps = st.lists(
    st.tuples(st.sampled_from(["pay", "append", "ask"]), st.integers(0, 15).map(lambda i: f"evt_{i}"),
              st.sampled_from(["cus_a", "cus_b"]), days, st.booleans()),
    max_size=50,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_the_remembered_first_payment_is_the_scan(steps: list[tuple[str, str, str, datetime, bool]]) -> None:
    history = History()
    for what, event_id, customer, at, paying in steps:
        if what == "pay":
            history.add_paying("prt_1", customer, event_id, at)
        elif what == "append":  # records appended around add_paying are still counted (by a scan)
            history.customer_paid[customer].append((event_id, at))
        else:
            event = EventFacts(event_id, "invoice_paid", "INV", at, 100, "EUR", customer, "ext")
            assert customer_context(history, event, paying) == scanned(history, event, paying)
