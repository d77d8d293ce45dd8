"""The demo's onboarding side: owners, terms, groups and a pilot, the application queue, prospects and notes.

Each extra is a dated write through the services; build.py runs them in time order between the story's steps.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.demo.data import (
    APPLICANTS,
    CARRY_PARTNER,
    PILOT_CAP,
    PILOT_DESCRIPTION,
    PILOT_MEMBERS,
    PILOT_NAME,
    PROSPECTS,
    RESELLER_MEMBERS,
    RESELLERS_DESCRIPTION,
    RESELLERS_NAME,
    Applicant,
    ProspectSpec,
)
from partnerpay.partners.admin import add_note, assign_owner
from partnerpay.partners.applications import submit_application
from partnerpay.partners.groups import create_group, move_partners
from partnerpay.partners.models import PartnerUser
from partnerpay.partners.prospects import create_prospect, update_prospect
from partnerpay.programs.terms import accept_terms

DAY = timedelta(days=1)
TERMS_VERSION = 1


@dataclass
class Cast:
    """Who acts in the story, and the ids the story has made so far."""

    program_id: str
    owner: Actor
    manager: Actor
    finance: Actor
    partner_ids: dict[int, str] = field(default_factory=dict)
    prospect_ids: dict[str, str] = field(default_factory=dict)
    batch_id: str | None = None


Write = Callable[[Session, Cast, datetime], None]


@dataclass(frozen=True)
class Extra:
    at: datetime
    title: str
    write: Write


def welcome(session: Session, cast: Cast, index: int, at: datetime, *, accept: bool) -> None:
    """A new partner gets an owner (the manager looks after the odd half) and, with `accept`, signs terms
    version 1 with the partner agreement (recorded by the owner)."""
    partner_id = cast.partner_ids[index]
    owner = cast.manager if index % 2 else cast.owner
    assign_owner(session, actor=cast.owner, partner_ids=[partner_id], owner_id=owner.id, now=at)
    if accept:
        accept_terms(session, actor=cast.owner, partner_id=partner_id, version=TERMS_VERSION, ip=None, now=at)


def accept_in_portal(session: Session, cast: Cast, user: PartnerUser, at: datetime, ip: str) -> None:
    """The demo partner accepts the terms with their own login, as partners do in the portal."""
    me = Actor(ActorType.PARTNER, user.id, frozenset({"read"}), cast.program_id, user.partner_id, user.email)
    accept_terms(session, actor=me, partner_id=user.partner_id, version=TERMS_VERSION, ip=ip, now=at)


def extras(now: datetime, seed: int) -> list[Extra]:
    """Everything onboarding adds to the story, oldest first; the same `now` and seed give the same times."""
    rng = random.Random(f"{seed}:onboarding")  # its own generator: the story's history stays as it was

    def day(days_ago: int) -> datetime:
        start = (now - days_ago * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
        return start + timedelta(hours=rng.randint(9, 17), minutes=rng.randint(0, 59))

    found: list[Extra] = [
        Extra(day(60), "resellers group", _resellers),
        Extra(day(45), "pilot group", _pilot(now)),
        Extra(day(40), "pilot kick-off note", _note("manager", PILOT_MEMBERS[1], _KICKOFF)),
        Extra(day(10), "dispute note", _note("finance", CARRY_PARTNER, _DISPUTE)),
    ]
    for spec in PROSPECTS:
        found.append(Extra(day(spec.created_days_ago), f"prospect {spec.company}", _prospect(spec, now)))
        if spec.moved_days_ago is not None:
            moved = (now - spec.moved_days_ago * DAY).replace(microsecond=0)
            found.append(Extra(moved, f"prospect {spec.company} {spec.stage}", _move(spec, now)))
    for applicant in APPLICANTS:
        at = (now - timedelta(days=applicant.days_ago)).replace(microsecond=0)
        found.append(Extra(at, f"application of {applicant.answers['name']}", _application(applicant)))
    return sorted(found, key=lambda e: e.at)


_KICKOFF = (
    "Pilot kick-off call done: they want co-branded landing pages and a shared Slack channel. "
    "Check in after their first two referrals."
)
_DISPUTE = (
    "Their enterprise customer was refunded and then disputed a card payment after the payout: "
    "the balance is negative and nets against their next commissions. Explained it to them by phone."
)


def _resellers(session: Session, cast: Cast, at: datetime) -> None:
    group = create_group(
        session,
        actor=cast.manager,
        program_id=cast.program_id,
        now=at,
        name=RESELLERS_NAME,
        description=RESELLERS_DESCRIPTION,
    )
    ids = [cast.partner_ids[i] for i in RESELLER_MEMBERS]
    move_partners(session, actor=cast.manager, partner_ids=ids, group_id=group.id, now=at + timedelta(minutes=7))


def _pilot(now: datetime) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        group = create_group(
            session,
            actor=cast.owner,
            program_id=cast.program_id,
            now=at,
            name=PILOT_NAME,
            description=PILOT_DESCRIPTION,
            is_pilot=True,
            size_cap=PILOT_CAP,
            starts_on=(now - 42 * DAY).date(),
            ends_on=(now + 48 * DAY).date(),
        )
        ids = [cast.partner_ids[i] for i in PILOT_MEMBERS]
        move_partners(session, actor=cast.manager, partner_ids=ids, group_id=group.id, now=at + 3 * DAY)

    return write


def _note(author: str, index: int, body: str) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        actor = cast.manager if author == "manager" else cast.finance
        add_note(session, actor=actor, partner_id=cast.partner_ids[index], body=body, now=at)

    return write


def _prospect(spec: ProspectSpec, now: datetime) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        owner = cast.manager if spec.managed else cast.owner
        if spec.moved_days_ago is None:
            stage, next_step, due = spec.stage, spec.next_step, (now + spec.due_in_days * DAY).date()
        else:  # where it started; _move brings it to where it is now
            stage, next_step, due = (
                "prospect",
                "Introduce Acme Analytics and the partner program",
                (at + 7 * DAY).date(),
            )
        prospect = create_prospect(
            session,
            actor=owner,
            program_id=cast.program_id,
            now=at,
            company=spec.company,
            contact_name=spec.contact_name,
            email=spec.email,
            website=spec.website,
            source=spec.source,
            owner_id=owner.id,
            stage=stage,
            next_step=next_step,
            due_on=due,
        )
        cast.prospect_ids[spec.company] = prospect.id

    return write


def _move(spec: ProspectSpec, now: datetime) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        owner = cast.manager if spec.managed else cast.owner
        changes = {"stage": spec.stage, "next_step": spec.next_step, "due_on": (now + spec.due_in_days * DAY).date()}
        update_prospect(session, actor=owner, prospect_id=cast.prospect_ids[spec.company], changes=changes, now=at)

    return write


def _application(applicant: Applicant) -> Write:
    def write(session: Session, cast: Cast, at: datetime) -> None:
        submit_application(session, program_id=cast.program_id, data=applicant.answers, now=at, ip=applicant.ip)

    return write
