"""Pushing a partner-registered deal to HubSpot: asked for by staff (a job is queued in the same transaction),
done by the outbox job, which creates the HubSpot deal and links it (deals.service.link_crm).

The HTTP call is a side effect, so it runs in the job, never in the request. A job retried after a lost answer
must not create a second HubSpot deal: before creating, the job searches HubSpot for a deal whose
partnerpay_deal_id property is this deal's id, and links that one if found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.deals.access import get_deal, require_staff_write
from partnerpay.deals.models import Deal
from partnerpay.deals.rules import DealStatus
from partnerpay.deals.service import link_crm
from partnerpay.deals.timeline import add_line
from partnerpay.integrations import hubspot, hubspot_client
from partnerpay.integrations.hubspot_client import ClientFactory, HubSpotError
from partnerpay.integrations.settings_store import get_integration
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import Handler, JobContext, PermanentJobError
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Conflict, PartnerpayError, ValidationError
from partnerpay.kit.money import to_major_string
from partnerpay.partners.models import Partner
from partnerpay.settings import Settings

PUSH_JOB = "hubspot.push_deal"
DEFAULT_PIPELINE = "default"
DEAL_ID_PROPERTY = "partnerpay_deal_id"
PARTNER_PROPERTY = "partnerpay_partner"


def _config(session: Session, program_id: str) -> dict[str, Any]:
    row = get_integration(session, program_id, hubspot.PROVIDER)
    return dict(row.config) if row is not None else {}


def _not_linked(deal: Deal) -> None:
    if deal.crm_id:
        raise Conflict(f"deal {deal.id} is already linked to HubSpot deal {deal.crm_id}", field="deal_id")


def hubspot_stage(deal: Deal, config: dict[str, Any]) -> str:
    """The HubSpot stage id for the deal's stage (stage_map read backwards), else deal_stage_on_push."""
    stage_map: dict[str, str] = config.get("stage_map") or hubspot.DEFAULT_STAGE_MAP
    matching = [crm for crm, ours in stage_map.items() if ours == deal.stage]
    if matching:
        return matching[0]
    fallback = config.get("deal_stage_on_push")
    if isinstance(fallback, str) and fallback:
        return fallback
    raise ValidationError(
        f"deal {deal.id} is at stage {deal.stage}, which no HubSpot stage maps to: set deal_stage_on_push "
        "(the HubSpot stage id new deals start in) or add that stage to stage_map",
        field="deal_stage_on_push",
    )


def request_push(session: Session, *, actor: Actor, box: SecretBox, deal_id: str, now: datetime) -> str:
    """Queue the push of an open, unlinked deal; the job id. 409 when it is already linked."""
    require_staff_write(actor, "pushing a deal to HubSpot")
    deal = get_deal(session, actor, deal_id)
    _not_linked(deal)
    if deal.status != DealStatus.OPEN:
        raise Conflict(f"deal {deal.id} is {deal.status}; only an open deal is pushed to HubSpot", field="deal_id")
    if hubspot_client.access_token(session, deal.program_id, box) is None:
        raise ValidationError(
            f"program {deal.program_id} has no HubSpot access_token: set one under integrations/hubspot",
            field="access_token",
        )
    hubspot_stage(deal, _config(session, deal.program_id))  # refused now rather than in the job
    payload = {"deal_id": deal.id, "requested_by": actor.id, "requested_by_label": actor.label or actor.id}
    [job_id] = enqueue(session, PUSH_JOB, [payload], now=now)
    audit.record(session, actor=actor, action="deal.push_hubspot", object_type="deal", object_id=deal.id,
                 program_id=deal.program_id, now=now, after={"job_id": job_id})  # fmt: skip
    return job_id


def deal_properties(session: Session, deal: Deal, config: dict[str, Any]) -> dict[str, str]:
    """What HubSpot stores: name, amount as a decimal string (never a float), stage, pipeline and the partner."""
    partner = session.get(Partner, deal.partner_id)
    assert partner is not None
    props = {
        "dealname": deal.company,
        "dealstage": hubspot_stage(deal, config),
        "pipeline": str(config.get("pipeline") or DEFAULT_PIPELINE),
        PARTNER_PROPERTY: f"{partner.name} ({partner.id})",
        DEAL_ID_PROPERTY: deal.id,
    }
    if deal.amount is not None and deal.currency:
        props["amount"] = to_major_string(deal.amount, deal.currency)
    return props


def push_deal(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    deal_id: str,
    now: datetime,
    client_factory: ClientFactory | None = None,
) -> Deal:
    """Create the deal in HubSpot (or find the one an earlier, interrupted run created) and link it."""
    require_staff_write(actor, "pushing a deal to HubSpot")
    deal = get_deal(session, actor, deal_id)
    _not_linked(deal)
    props = deal_properties(session, deal, _config(session, deal.program_id))
    with hubspot_client.client_for(session, deal.program_id, box, client_factory) as client:
        crm_id = client.find_deal(DEAL_ID_PROPERTY, deal.id)
        found = crm_id is not None
        if crm_id is None:
            crm_id = client.create_deal(props)
    link_crm(session, actor=actor, deal_id=deal.id, crm_id=crm_id, now=now)
    how = "found from an earlier push" if found else "created"
    add_line(session, deal=deal, kind="deal.crm", text=f"HubSpot deal {crm_id} {how} and linked", actor=actor,
             now=now, partner_timeline=False)  # fmt: skip
    return deal


def push_handler(settings: Settings | None = None, client_factory: ClientFactory | None = None) -> Handler:
    """The outbox handler of hubspot.push_deal {deal_id, requested_by, requested_by_label}."""

    def run(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        # Locked: two push jobs for one deal (asked twice) run one after the other, and the second sees the link.
        deal = session.get(Deal, str(payload.get("deal_id")), with_for_update=True)
        if deal is None:
            raise PermanentJobError(f"deal {payload.get('deal_id')} does not exist")
        if deal.crm_id:
            return  # linked meanwhile (by hand, or an earlier run whose "done" mark was lost)
        label = str(payload.get("requested_by_label") or payload.get("requested_by") or "staff")
        actor = Actor(ActorType.SYSTEM, f"job:{PUSH_JOB}", frozenset({"read", "write"}),
                      program_id=deal.program_id, label=f"HubSpot push for {label}"[:320])  # fmt: skip
        try:
            box = settings.secret_box() if settings is not None else hubspot.secret_box()
            push_deal(session, actor=actor, box=box, deal_id=deal.id, now=context.now, client_factory=client_factory)
        except HubSpotError as exc:
            if exc.retryable:
                raise  # the outbox retries later with a backoff
            raise PermanentJobError(exc.message) from None
        except PartnerpayError as exc:  # no token, no stage: a person must act; retrying cannot help
            raise PermanentJobError(f"{exc.code}: {exc.message}") from None

    return run
