"""Rules that would pay twice on one event: refused on publish unless a priority decides between them.

Two rules overlap when they have the same trigger, the same priority and conditions that some single event
can satisfy at once. With different priorities the evaluator pays only the highest-priority matching rule(s),
so the overlap is deliberate and allowed. A rule that only pays a one-time bonus is additive by design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from partnerpay.kit.errors import ValidationError
from partnerpay.plans.rules import Conditions, Rule


@dataclass(frozen=True)
class Overlap:
    first: int  # rule numbers from 1, as people count them
    second: int
    trigger: str
    scope: str  # "for product pro in DE", or "" when both match every event of the trigger

    def message(self) -> str:
        where = f" {self.scope}" if self.scope else ""
        return (
            f"rules {self.first} and {self.second} both pay on {self.trigger}{where}; "
            "give one a higher priority or narrow its conditions"
        )


def _meet(a: list[str], b: list[str]) -> list[str] | None:
    """The values both lists accept ([] accepts anything); None when they share none."""
    if not a:
        return list(b)
    if not b:
        return list(a)
    shared = [v for v in a if v in b]
    return shared or None


def shared_scope(a: Conditions, b: Conditions) -> str | None:
    """How one event could match both conditions, in words; None when no event can.

    first_payment_only and min_amount never separate two rules: a first payment of a large amount meets both.
    """
    parts = []
    for label, left, right in (
        ("product", a.products, b.products),
        ("SKU", a.skus, b.skus),
        ("customer country", a.customer_countries, b.customer_countries),
        ("partner group", a.partner_group_ids, b.partner_group_ids),
    ):
        both = _meet(left, right)
        if both is None:
            return None
        if both:
            parts.append(f"{label}{'s' if len(both) > 1 else ''} {', '.join(both)}")
    for key in a.metadata_equals.keys() & b.metadata_equals.keys():
        if a.metadata_equals[key] != b.metadata_equals[key]:
            return None
    metadata = {**a.metadata_equals, **b.metadata_equals}
    parts.extend(f"metadata {k}={v}" for k, v in sorted(metadata.items()))
    return ("for " + " and ".join(parts)) if parts else ""


def overlaps(rules: Sequence[Rule]) -> list[Overlap]:
    """Every pair of per-event rules that could pay on the same event at the same priority."""
    found = []
    for i, a in enumerate(rules):
        if not a.pays_per_event:
            continue
        for j in range(i + 1, len(rules)):
            b = rules[j]
            if not b.pays_per_event or a.trigger != b.trigger or a.priority != b.priority:
                continue
            scope = shared_scope(a.conditions, b.conditions)
            if scope is not None:
                found.append(Overlap(i + 1, j + 1, a.trigger, scope))
    return found


def refuse_overlaps(rules: Sequence[Rule]) -> None:
    """Raise naming the first conflicting pair (and how many more there are)."""
    found = overlaps(rules)
    if not found:
        return
    first = found[0]
    more = f" ({len(found) - 1} more overlapping pair(s))" if len(found) > 1 else ""
    raise ValidationError(first.message() + more, field="rules", rules=[first.first, first.second], overlaps=len(found))


def winners(matching: Sequence[Rule]) -> list[Rule]:
    """Of the rules that match one event, those that pay: the highest-priority per-event rules, plus every
    bonus-only rule (additive by design). Publishing refused any other overlap, so this is the whole policy."""
    per_event = [r for r in matching if r.pays_per_event]
    top = max((r.priority for r in per_event), default=None)
    return [r for r in matching if not r.pays_per_event or r.priority == top]
