"""Console reconciliation of a batch (returns upload, tie-out) and the partner's payout pages in the portal."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.partners.payout_details import set_tax_profile
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import approve_batch, create_payout_run
from partnerpay.tax.sealed_file import unseal
from tests.api.test_pages import World, csrf_of, login, staff, world  # noqa: F401  (world is a fixture)
from tests.integration.test_tax import W9, paid_program, partner_of


def approved_batch(w: World) -> tuple[str, dict[str, str]]:
    """Both demo partners' lines approved, past hold, in an approved batch: (batch id, partner id → payout id)."""
    w.clock.advance(timedelta(days=31))
    with w.factory() as s:
        approve_lines(s, actor=SYSTEM, ids=[w.acme_line, w.beta_line], now=w.clock.now())
        run = create_payout_run(s, actor=SYSTEM, program_id=w.program_id, now=w.clock.now())
        assert run.batch is not None
        batch_id = run.batch.id
        approve_batch(s, actor=SYSTEM, batch_id=batch_id, now=w.clock.now())
        payouts = dict(s.execute(select(Payout.partner_id, Payout.id).where(Payout.batch_id == batch_id)).all())
        s.commit()
    return batch_id, payouts


def status(w: World, payout_id: str) -> str:
    with w.factory() as s:
        payout = s.get(Payout, payout_id)
        assert payout is not None
        return payout.status


class TestBatchReconciliationPage:
    def test_finance_checks_then_records_a_returns_file(self, world: World) -> None:  # noqa: F811
        batch_id, payouts = approved_batch(world)
        client = staff(world, "finance")
        url = f"/payouts/batches/{batch_id}"
        page = client.get(url).text
        assert "Reconciliation" in page and "Bank returns file" in page and "Ledger: payable → clearing" in page
        token = csrf_of(client, url)
        text = f"payout_id,status,reason\n{payouts[world.acme_id]},paid,\n{payouts[world.beta_id]},returned,AC04\n"
        checked = client.post(
            f"{url}/reconcile",
            data={"csrf_token": token, "action": "check"},
            files={"file": ("returns.csv", text.encode(), "text/csv")},
        )
        assert checked.status_code == 200 and "is valid" in checked.text and "1 paid" in checked.text
        assert status(world, payouts[world.acme_id]) == "approved"
        carried = client.post(
            f"{url}/reconcile",
            data={
                "csrf_token": token,
                "action": "record",
                "filename": "returns.csv",
                "carried": checked.text.split('name="carried" value="')[1].split('"')[0],
            },
        )
        assert carried.status_code == 200 and "1 paid, 0 failed, 1 returned" in carried.text
        assert "AC04" in carried.text and "Back in the partner's balance" in carried.text
        assert status(world, payouts[world.beta_id]) == "returned"
        batch_page = client.get(url).text
        assert "Ties out: batch total" in batch_page and "Does not tie out" not in batch_page
        listing = client.get("/payouts").text
        assert "Failed and returned payouts" in listing and "Beta Blog" in listing and "AC04" in listing

    def test_a_bad_file_shows_every_row_and_a_missing_csrf_token_is_refused(self, world: World) -> None:  # noqa: F811
        batch_id, payouts = approved_batch(world)
        client = staff(world, "finance")
        url = f"/payouts/batches/{batch_id}"
        token = csrf_of(client, url)
        bad = client.post(
            f"{url}/reconcile",
            data={"csrf_token": token, "action": "record"},
            files={"file": ("r.csv", b"payout_id,status\npay_nope,paid\n", "text/csv")},
        )
        assert bad.status_code == 422 and "Nothing was recorded" in bad.text and "pay_nope" in bad.text
        forged = client.post(
            f"{url}/reconcile",
            data={"action": "record"},
            files={"file": ("r.csv", f"payout_id,status\n{payouts[world.acme_id]},paid\n".encode(), "text/csv")},
        )
        assert forged.status_code == 403
        assert status(world, payouts[world.acme_id]) == "approved"

    def test_a_manager_sees_no_upload_form_and_cannot_record(self, world: World) -> None:  # noqa: F811
        batch_id, payouts = approved_batch(world)
        client = staff(world, "manager")
        url = f"/payouts/batches/{batch_id}"
        assert "Bank returns file" not in client.get(url).text
        r = client.post(
            f"{url}/reconcile",
            data={"csrf_token": csrf_of(client, url), "action": "record"},
            files={"file": ("r.csv", f"payout_id,status\n{payouts[world.acme_id]},paid\n".encode(), "text/csv")},
        )
        assert r.status_code == 403 and "finance or owner" in r.text


def paid_and_returned(w: World) -> dict[str, str]:
    _, payouts = approved_batch(w)
    with w.factory() as s:
        record_results(
            s,
            actor=SYSTEM,
            results=[
                RailResult(payouts[w.acme_id], "paid"),
                RailResult(payouts[w.beta_id], "returned", reason="R03 no account under that number"),
            ],
            now=w.clock.now(),
        )
        s.commit()
    return payouts


class TestPortalPayouts:
    def test_a_partner_sees_its_payouts_with_dates_and_reasons(self, world: World) -> None:  # noqa: F811
        payouts = paid_and_returned(world)
        acme = login(world.client(), "portal@acme.example", portal=True)
        page = acme.get("/portal/payouts")
        assert page.status_code == 200
        assert "€240.00" in page.text and "Paid on" in page.text and "Approved by finance" in page.text
        assert payouts[world.beta_id] not in page.text, "another partner's payout is not listed"
        detail = acme.get(f"/portal/payouts/{payouts[world.acme_id]}")
        assert detail.status_code == 200 and "20 % of €1,200.00" in detail.text and "Timeline" in detail.text
        beta = login(world.client(), "portal@beta.example", portal=True)
        returned = beta.get(f"/portal/payouts/{payouts[world.beta_id]}").text
        assert "Returned by the bank" in returned and "R03 no account under that number" in returned
        assert "back in your balance" in returned
        assert "Credit note" not in returned  # returned, but it never had an invoice to cancel
        home = beta.get("/portal").text
        assert "Next payout" in home and "€100.01</span> is payable" in home

    def test_another_partners_payout_is_404_and_so_is_its_invoice(self, world: World) -> None:  # noqa: F811
        payouts = paid_and_returned(world)
        acme = login(world.client(), "portal@acme.example", portal=True)
        assert acme.get(f"/portal/payouts/{payouts[world.beta_id]}").status_code == 404
        assert acme.get(f"/portal/payouts/{payouts[world.beta_id]}/invoice.pdf").status_code == 404
        assert acme.get(f"/portal/payouts/{payouts[world.beta_id]}/credit-note.pdf").status_code == 404
        assert acme.get("/portal/payouts/pay_nope").status_code == 404

    def test_an_open_payout_says_what_it_waits_for(self, world: World) -> None:  # noqa: F811
        _, payouts = approved_batch(world)
        acme = login(world.client(), "portal@acme.example", portal=True)
        detail = acme.get(f"/portal/payouts/{payouts[world.acme_id]}").text
        assert "when the bank confirms the transfer" in detail
        home = acme.get("/portal").text
        assert "Next payout" in home and "€240.00" in home


class TestConsole1099:
    def test_finance_sees_masked_tins_and_downloads_the_sealed_report(self, world: World) -> None:  # noqa: F811
        with world.factory() as s:
            prog, payouts = paid_program(s, world.clock, {"a": 400_000}, paid_at=world.clock.now())
            box = world.app.state.secret_box
            set_tax_profile(
                s, actor=SYSTEM, box=box, partner_id=partner_of(s, payouts["a"]), data=W9, now=world.clock.now()
            )
            s.commit()
            program_id = prog.id
        year = world.clock.now().year
        finance = staff(world, "finance")
        page = finance.get(f"/payouts/tax/1099?program_id={program_id}&year={year}")
        assert page.status_code == 200 and "Acme LLC" in page.text and "4442" in page.text
        assert "1144442" not in page.text and "Download encrypted report" in page.text
        token = csrf_of(finance, "/payouts")
        form = {
            "program_id": program_id,
            "year": str(year),
            "passphrase": "a long enough passphrase",
            "csrf_token": token,
        }
        sealed = finance.post("/payouts/tax/1099/export", data=form)
        assert sealed.status_code == 200 and b"1144442" not in sealed.content
        assert "91-1144442" in unseal(sealed.content, passphrase="a long enough passphrase")[1].decode()
        short = finance.post("/payouts/tax/1099/export", data={**form, "passphrase": "short"})
        assert short.status_code == 422 and "at least 12 characters" in short.text
        manager = staff(world, "manager")
        assert (
            "Download encrypted report"
            not in manager.get(f"/payouts/tax/1099?program_id={program_id}&year={year}").text
        )
        refused = manager.post("/payouts/tax/1099/export", data={**form, "csrf_token": csrf_of(manager, "/payouts")})
        assert refused.status_code == 403
