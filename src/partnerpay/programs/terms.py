"""Versioned program terms: publish a version, partners accept it, and only then do they earn.

A new version asks every partner again: until a partner accepts the latest version, payments of
their customers make no commission (the event is still recorded, and the timeline says why).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.db.chunks import in_chunks
from partnerpay.events.models import Event
from partnerpay.jobs.handlers import NOTIFY_PARTNER
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.errors import Conflict, Forbidden, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program, ProgramTerms, TermsAcceptance
from partnerpay.programs.service import get_program

MAX_TITLE = 200
MAX_BODY = 100_000
# Partners who may still earn or be paid are asked to accept a new version.
ASKED = (PartnerStatus.ACTIVE.value, PartnerStatus.SUSPENDED.value)

# Raw HTML in the markdown is shown as text, and markdown-it refuses javascript: and data: links.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")


def to_html(body_markdown: str) -> str:
    """The terms as HTML that is safe to put in a page (no raw HTML passes through)."""
    return str(_markdown.render(body_markdown))


def latest_terms(session: Session, program_id: str) -> ProgramTerms | None:
    return session.scalar(
        select(ProgramTerms).where(ProgramTerms.program_id == program_id).order_by(ProgramTerms.version.desc()).limit(1)
    )


def terms_versions(session: Session, program_id: str) -> list[ProgramTerms]:
    """Newest first."""
    return list(
        session.scalars(
            select(ProgramTerms).where(ProgramTerms.program_id == program_id).order_by(ProgramTerms.version.desc())
        )
    )


def acceptance_of(session: Session, partner_id: str, terms_id: str) -> TermsAcceptance | None:
    return session.scalar(
        select(TermsAcceptance).where(TermsAcceptance.partner_id == partner_id, TermsAcceptance.terms_id == terms_id)
    )


def needs_acceptance(session: Session, partner_id: str) -> ProgramTerms | None:
    """The latest terms of the partner's program when the partner has not accepted them; else None."""
    program_id = session.scalar(select(Partner.program_id).where(Partner.id == partner_id))
    if program_id is None:
        return None
    terms = latest_terms(session, program_id)
    if terms is None or acceptance_of(session, partner_id, terms.id) is not None:
        return None
    return terms


def needing_acceptance(session: Session, program_id: str, partner_ids: Iterable[str]) -> set[str]:
    """needs_acceptance for many partners of one program in two reads: those that have not accepted the
    latest terms."""
    wanted = set(partner_ids)
    terms = latest_terms(session, program_id)
    if terms is None or not wanted:
        return set()
    ordered = sorted(wanted)
    accepted: set[str] = set()
    for chunk in in_chunks(ordered):
        accepted.update(
            session.scalars(
                select(TermsAcceptance.partner_id).where(
                    TermsAcceptance.terms_id == terms.id, TermsAcceptance.partner_id.in_(chunk)
                )
            ).all()
        )
    return wanted - accepted


def may_earn(session: Session, *, actor: Actor, partner: Partner, event: Event, now: datetime) -> bool:
    """False when the partner has not accepted the program's latest terms; the timeline says what was missed."""
    terms = needs_acceptance(session, partner.id)
    if terms is None:
        return True
    record_activity(
        session,
        partner_id=partner.id,
        kind="terms.not_accepted",
        actor=actor,
        now=now,
        text=f"No commission on {event.type} {event.external_id}: terms version {terms.version} not accepted yet",
        ref_type="terms",
        ref_id=terms.id,
    )
    return False


def publish_terms(
    session: Session, *, actor: Actor, program_id: str, title: str, body_markdown: str, now: datetime
) -> ProgramTerms:
    """A new version (last + 1); every active or suspended partner is asked to accept it in the portal."""
    if not actor.can("admin" if actor.type is ActorType.STAFF else "write") or actor.partner_id is not None:
        raise Forbidden("publishing terms needs the owner role (or an API key with 'write')")
    get_program(session, actor, program_id)
    title, body = title.strip(), body_markdown.strip()
    if not title or len(title) > MAX_TITLE:
        raise ValidationError(f"title must have 1 to {MAX_TITLE} characters", field="title")
    if not body or len(body) > MAX_BODY:
        raise ValidationError(f"body_markdown must have 1 to {MAX_BODY} characters", field="body_markdown")
    # Row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): two publishers get N+1 and N+2.
    session.execute(select(Program.id).where(Program.id == program_id).with_for_update())
    last = latest_terms(session, program_id)
    terms = ProgramTerms(
        id=new_id("trm"),
        program_id=program_id,
        version=(last.version if last else 0) + 1,
        title=title,
        body_markdown=body,
        published_at=now,
        created_by=actor.id,
    )
    session.add(terms)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="terms.publish",
        object_type="program_terms",
        object_id=terms.id,
        program_id=program_id,
        now=now,
        after={"version": terms.version, "title": title, "previous_version": last.version if last else None},
    )
    asked = session.scalars(select(Partner.id).where(Partner.program_id == program_id, Partner.status.in_(ASKED)))
    text = f"New program terms (version {terms.version}): read and accept them in the portal to keep earning."
    enqueue(session, NOTIFY_PARTNER, [{"partner_id": p, "kind": "terms.new", "text": text} for p in asked], now=now)
    return terms


def accept_terms(
    session: Session, *, actor: Actor, partner_id: str, version: int, ip: str | None, now: datetime
) -> TermsAcceptance:
    """Record that the partner accepted `version`, which must be the current one; accepting twice is a no-op."""
    partner = get_partner(session, actor, partner_id)
    if actor.type is not ActorType.PARTNER and not actor.can("write"):
        raise Forbidden("recording a terms acceptance needs the partner's own login or the 'write' scope")
    terms = latest_terms(session, partner.program_id)
    if terms is None:
        raise ValidationError("this program has no terms to accept", field="version")
    if version != terms.version:
        raise Conflict(
            f"version {version} is not the current terms; read and accept version {terms.version}", field="version"
        )
    # Lock the partner row (PostgreSQL) so a double-submitted form records one acceptance, not a crash.
    session.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
    existing = acceptance_of(session, partner.id, terms.id)
    if existing is not None:
        return existing
    acceptance = TermsAcceptance(
        id=new_id("tac"),
        partner_id=partner.id,
        terms_id=terms.id,
        version=terms.version,
        partner_user_id=actor.id if actor.type is ActorType.PARTNER else None,
        ip=(ip or "")[:64] or None,
        accepted_at=now,
    )
    session.add(acceptance)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="terms.accept",
        object_type="terms_acceptance",
        object_id=acceptance.id,
        program_id=partner.program_id,
        now=now,
        after={"partner_id": partner.id, "version": terms.version, "ip": acceptance.ip},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="terms.accepted",
        actor=actor,
        now=now,
        text=f"Accepted terms version {terms.version} ({actor.label or actor.id}, from {acceptance.ip or 'unknown'})",
        ref_type="terms",
        ref_id=terms.id,
    )
    return acceptance


def acceptance_counts(session: Session, program_id: str) -> tuple[dict[str, int], int]:
    """Acceptances per terms id, and how many partners are asked to accept (active or suspended)."""
    per_terms = dict(
        session.execute(
            select(TermsAcceptance.terms_id, func.count())
            .join(ProgramTerms, ProgramTerms.id == TermsAcceptance.terms_id)
            .where(ProgramTerms.program_id == program_id)
            .group_by(TermsAcceptance.terms_id)
        ).all()
    )
    asked = session.scalar(
        select(func.count()).select_from(Partner).where(Partner.program_id == program_id, Partner.status.in_(ASKED))
    )
    return {str(k): int(v) for k, v in per_terms.items()}, int(asked or 0)
