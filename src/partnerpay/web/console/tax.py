"""Console: the 1099-NEC report of a program and year (TIN masked), and its sealed full export for finance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.tax import nec
from partnerpay.tax.sealed_file import seal
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, now, reading, render, role_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
PATH = "/payouts/tax/1099"


def _page(
    request: Request,
    me: Actor,
    program_id: str,
    year: int | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    at = now(request)
    chosen_year = year or at.year - 1
    report = None
    with reading(request) as session:
        programs = queries.programs(session)
        chosen = program_id or (programs[0].id if programs else "")
        if chosen:
            try:
                report = nec.nec_report(session, actor=me, program_id=chosen, year=chosen_year, now=at)
            except PartnerpayError as exc:
                error, status_code = error or exc.message, exc.status if status_code == 200 else status_code
        context = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "payouts",
            "programs": programs,
            "program_id": chosen,
            "year": chosen_year,
            "report": report,
            "names": queries.partner_names(session, report.without_w9) if report else {},
            "error": error,
        }
    return render(request, "console/tax_1099.html", context, status_code=status_code)


@router.get(PATH)
def nec_page(request: Request, me: Actor = Staff, program_id: str = "", year: int | None = None) -> Response:
    return _page(request, me, program_id, year)


@router.post(f"{PATH}/export")
def nec_export(
    request: Request,
    me: Actor = Staff,
    program_id: Annotated[str, Form()] = "",
    year: Annotated[int, Form()] = 0,
    passphrase: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    """The full report (TINs in clear) sealed with the passphrase typed in the form; finance or owner; audited."""
    check_form_csrf(request, csrf_token)
    filename = f"1099-nec-{year}.csv"
    try:
        with unit_of_work(factory(request)) as session:
            at = now(request)
            report = nec.nec_report(session, actor=me, program_id=program_id, year=year, now=at)
            content = nec.full_csv(session, actor=me, box=request.app.state.secret_box, report=report, now=at)
            sealed = seal(content.encode(), filename=filename, passphrase=passphrase)
    except PartnerpayError as exc:
        return _page(request, me, program_id, year, error=exc.message, status_code=exc.status)
    return Response(
        sealed,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}.sealed.json"', "Cache-Control": "no-store"},
    )
