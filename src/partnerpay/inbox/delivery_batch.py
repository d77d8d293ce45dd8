"""What a group commit of webhook deliveries writes, whatever the database: the deliveries, their answers,
the inbox and job rows of the new ones, and the audit rows that name them (one per provider and program).

inbox/delivery_writer.py (SQLite and the session path) and inbox/delivery_pg.py (PostgreSQL's two round
trips) both build their rows here, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import PROCESS_JOB, RECEIVE_ACTION, provider_actor, source_of
from partnerpay.kit.ids import new_ids

BATCH_OBJECT = "inbox_batch"  # the audit object of a group commit: named by its first item, listing all
EXTERNAL_ID_CHARS, KIND_CHARS = 200, 100  # the inbox columns' widths


@dataclass(frozen=True, slots=True)
class Delivery:
    program_id: str
    provider: str
    external_id: str
    kind: str
    body: str
    headers: dict[str, str]
    now: datetime
    status: InboxStatus = InboxStatus.RECEIVED
    error: str | None = None
    note: str | None = None

    @property
    def source(self) -> str:
        return source_of(self.provider, self.program_id)

    @property
    def key(self) -> tuple[str, str]:
        """What the inbox is unique on."""
        return self.source, self.external_id[:EXTERNAL_ID_CHARS]


@dataclass(frozen=True, slots=True)
class Stored:
    id: str
    status: str
    duplicate: bool

    def answer(self) -> dict[str, Any]:
        return {"received": True, "id": self.id, "status": self.status, "duplicate": self.duplicate}


@dataclass(slots=True)
class Planned:
    """A batch's answers (in delivery order) and the deliveries that are new to it, with their item ids."""

    answers: list[Stored]
    new: list[tuple[str, Delivery]]


def plan(deliveries: Sequence[Delivery], known: dict[tuple[str, str], Stored]) -> Planned:
    """Answer what is stored already (`known`, by inbox key) as a replay, give each new delivery an item id,
    and answer a later copy of a new delivery in the same batch as a replay of the first."""
    answers: list[Stored] = []
    new: list[tuple[str, Delivery]] = []
    ids = iter(new_ids("inb", len(deliveries)))
    seen = dict(known)
    for d in deliveries:
        earlier = seen.get(d.key)
        if earlier is not None:
            answers.append(Stored(earlier.id, earlier.status, True))
            continue
        item_id = next(ids)
        new.append((item_id, d))
        seen[d.key] = Stored(item_id, d.status.value, True)
        answers.append(Stored(item_id, d.status.value, False))
    return Planned(answers, new)


def keys_by_source(deliveries: Sequence[Delivery]) -> dict[str, list[str]]:
    by_source: dict[str, list[str]] = defaultdict(list)
    for d in deliveries:
        by_source[d.source].append(d.key[1])
    return by_source


def item_rows(new: Sequence[tuple[str, Delivery]], at: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """(id, program_id, source, provider, external_id, kind, body, headers, received_at, status, error, note)."""
    return [
        (item_id, d.program_id, d.source, d.provider, d.key[1], d.kind[:KIND_CHARS], d.body,
         _json(d.headers), at(d.now), d.status.value, d.error, d.note)
        for item_id, d in new
    ]  # fmt: skip


def job_rows(new: Sequence[tuple[str, Delivery]], at: Callable[[datetime], Any]) -> list[tuple[Any, ...]]:
    """One processing job per received item: (id, kind, payload, run_after, created_at, item id)."""
    received = [(item_id, d) for item_id, d in new if d.status is InboxStatus.RECEIVED]
    return [
        (job_id, PROCESS_JOB, f'{{"item_id":"{item_id}"}}', at(d.now), at(d.now), item_id)
        for job_id, (item_id, d) in zip(new_ids("job", len(received)), received, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class AuditGroup:
    actor: Actor
    now: datetime
    item: tuple[str, str, str | None, Any, Any]  # (object_type, object_id, program_id, before, after)


def audit_rows(new: Sequence[tuple[str, Delivery]], head: str) -> list[tuple[Any, ...]]:
    """The batch's audit rows (audit.COLUMNS order), chained from `head`: the caller holds the chain's lock
    and inserts them in order. The last row's last field is the chain's new head."""
    rows: list[tuple[Any, ...]] = []
    for group in audit_groups(new):
        prev = rows[-1][-1] if rows else head
        rows += audit.chain_rows(prev, actor=group.actor, action=RECEIVE_ACTION, now=group.now, items=[group.item])
    return rows


def audit_groups(new: Sequence[tuple[str, Delivery]]) -> list[AuditGroup]:
    """One audit row per provider and program, named by its first item and listing every item it stored."""
    groups: dict[tuple[str, str], list[tuple[str, Delivery]]] = defaultdict(list)
    for item_id, d in new:
        groups[(d.provider, d.program_id)].append((item_id, d))
    return [
        AuditGroup(
            actor=provider_actor(provider, program_id),
            now=members[0][1].now,
            item=(BATCH_OBJECT, members[0][0], program_id, None, _snapshot(members)),
        )
        for (provider, program_id), members in groups.items()
    ]


def _snapshot(members: list[tuple[str, Delivery]]) -> dict[str, Any]:
    return {
        "source": members[0][1].source,
        "items": [
            {"id": item_id, "external_id": d.key[1], "kind": d.kind[:KIND_CHARS], "status": d.status.value}
            for item_id, d in members
        ],
    }


def _json(value: dict[str, str]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
