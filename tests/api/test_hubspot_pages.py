"""The console's "Push to HubSpot" button on a deal page: refused with the service's words, else a queued job."""

from __future__ import annotations

from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.deals.models import Deal
from partnerpay.integrations.settings_store import put_integration
from partnerpay.jobs.models import OutboxJob
from tests.api import test_pages
from tests.api.test_deals_pages import lead_of, portal, register
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world


def test_the_deal_page_pushes_a_deal_to_hubspot_as_a_job(world: World) -> None:
    register(portal(world))
    client = staff(world, "manager")
    token = csrf_of(client, "/deals")
    client.post("/deals/leads/decide", data={"ids": lead_of(world, world.acme_id).id, "action": "accept",
                                             "csrf_token": token})  # fmt: skip
    with world.factory() as s:
        deal_id = s.scalar(select(Deal.id).where(Deal.partner_id == world.acme_id))
    assert 'id="push-hubspot"' in client.get(f"/deals/{deal_id}").text

    refused = client.post(f"/deals/{deal_id}/push-to-hubspot", data={"csrf_token": token})
    assert "has no HubSpot access_token" in refused.text

    with world.factory() as s:
        put_integration(s, actor=SYSTEM, box=world.app.state.secret_box, program_id=world.program_id,
                        provider="hubspot", body={"access_token": "pat-test-000000000000",
                                                  "deal_stage_on_push": "appointmentscheduled"},
                        now=world.clock.now())  # fmt: skip
        s.commit()
    queued = client.post(f"/deals/{deal_id}/push-to-hubspot", data={"csrf_token": token})
    assert "Queued: the deal is created in HubSpot" in queued.text
    with world.factory() as s:
        [job] = s.scalars(select(OutboxJob).where(OutboxJob.kind == "hubspot.push_deal")).all()
        assert job.payload["deal_id"] == deal_id
        s.get(Deal, deal_id).crm_id = "9001"  # type: ignore[union-attr]
        s.commit()
    assert 'id="push-hubspot"' not in client.get(f"/deals/{deal_id}").text
