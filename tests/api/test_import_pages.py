"""The console's partner import page: upload, check (dry run), the table of row/column errors, then import."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from partnerpay.auth.models import StaffUser
from partnerpay.partners.models import Partner
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world  # the page tests' fixture: a program, two partners, staff of every role

GOOD = b"name,email,country\nCarla Reviews,carla@reviews.example,IT\nDan Deals,dan@deals.example,\n"
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')


def partners(world: World) -> int:
    with world.factory() as s:
        return int(s.scalar(select(func.count()).select_from(Partner)) or 0)


def send(client: TestClient, world: World, data: bytes, action: str = "check", **fields: str) -> object:
    form = {
        "csrf_token": csrf_of(client, "/partners/import"),
        "program_id": world.program_id,
        "action": action,
        **fields,
    }
    return client.post("/partners/import", data=form, files={"file": ("partners.csv", data, "text/csv")})


class TestImportPage:
    def test_the_page_needs_a_staff_login(self, world: World) -> None:
        response = world.client().get("/partners/import", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")

    def test_the_partners_page_links_to_the_import(self, world: World) -> None:
        assert 'href="/partners/import"' in staff(world, "manager").get("/partners").text

    def test_the_page_lists_the_columns_and_offers_a_template(self, world: World) -> None:
        page = staff(world, "manager").get("/partners/import").text
        assert "Upload a CSV" in page and "owner_email" in page and "/partners/import/template.csv" in page

    def test_checking_a_good_file_shows_what_will_be_imported_and_writes_nothing(self, world: World) -> None:
        client = staff(world, "manager")
        response = send(client, world, GOOD)
        assert response.status_code == 200, response.text
        assert "partners.csv is ready: 2 partners to import" in response.text
        assert "Import 2 partners" in response.text
        assert partners(world) == 2  # the two partners of the World fixture only

    def test_confirming_a_checked_file_imports_it_without_choosing_it_again(self, world: World) -> None:
        client = staff(world, "manager")
        checked = send(client, world, GOOD).text
        block = re.search(r"<form[^>]*data-confirm=\"Import 2 partners[^>]*>(.*?)</form>", checked, re.S)
        assert block, "no confirmation form"
        confirm = dict(HIDDEN.findall(block.group(1)))
        assert confirm["action"] == "import" and confirm["filename"] == "partners.csv"
        response = client.post("/partners/import", data=confirm, files={"file": ("", b"", "application/octet-stream")})
        assert response.status_code == 200 and str(response.url).endswith("/partners")
        assert "Imported 2 partners from partners.csv" in response.text
        with world.factory() as s:
            manager = s.scalars(select(StaffUser.id).where(StaffUser.email == "manager@example.com")).one()
            imported = s.scalars(select(Partner).where(Partner.email == "carla@reviews.example")).one()
        assert (imported.status, imported.source, imported.owner_id) == ("active", "import", manager)

    def test_the_import_button_checks_and_imports_in_one_step(self, world: World) -> None:
        response = send(staff(world, "manager"), world, GOOD, action="import")
        assert response.status_code == 200 and "Imported 2 partners" in response.text
        assert partners(world) == 4

    def test_a_bad_file_shows_a_table_of_row_and_column_errors_and_writes_nothing(self, world: World) -> None:
        data = b"name,email,country\nCarla,carla@reviews.example,Italy\nDan,acme@example.com,\n"
        response = send(staff(world, "manager"), world, data, action="import")
        assert response.status_code == 422
        assert "Nothing was imported: 2 problems in partners.csv" in response.text
        table = response.text.split('id="import-errors"')[1].split("</table>")[0]
        assert re.search(r">2</td>\s*<td[^>]*>country</td>\s*<td[^>]*>&#39;Italy&#39; is not an ISO", table)
        assert "a partner with email acme@example.com already exists in this program" in table
        assert partners(world) == 2

    def test_a_changed_carried_file_is_refused(self, world: World) -> None:
        client = staff(world, "manager")
        fields = {"carried": "bmFtZSxlbWFpbApYLHhAeC5leGFtcGxlCg==", "sha256": "0" * 64, "filename": "partners.csv"}
        form = {"csrf_token": csrf_of(client, "/partners/import"), "program_id": world.program_id, "action": "import"}
        response = client.post("/partners/import", data=form | fields, files={"file": ("", b"", "text/csv")})
        assert response.status_code == 422 and "did not come back intact" in response.text
        assert partners(world) == 2

    def test_a_viewer_is_told_why_and_a_post_is_refused(self, world: World) -> None:
        client = staff(world, "viewer")
        assert "importing partners needs the manager, finance or owner role" in client.get("/partners/import").text
        response = send(client, world, GOOD, action="import")
        assert response.status_code == 403 and "importing partners needs the manager" in response.text
        assert partners(world) == 2

    def test_a_post_without_the_form_token_is_refused(self, world: World) -> None:
        client = staff(world, "manager")
        form = {"program_id": world.program_id, "action": "import"}
        response = client.post("/partners/import", data=form, files={"file": ("partners.csv", GOOD, "text/csv")})
        assert response.status_code == 403 and partners(world) == 2

    def test_the_template_has_every_column_and_passes_its_own_check(self, world: World) -> None:
        client = staff(world, "manager")
        template = client.get("/partners/import/template.csv")
        assert template.status_code == 200 and "attachment" in template.headers["content-disposition"]
        assert template.text.lstrip("\ufeff").startswith("name,email,group,country,company,website,payout_email")
        checked = send(client, world, template.content)
        assert checked.status_code == 200 and "is ready: 2 partners to import" in checked.text
