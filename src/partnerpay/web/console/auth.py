"""Console login and logout (staff users)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.service import authenticate_staff
from partnerpay.web.pages import (
    PageRoute,
    check_form_csrf,
    end_session,
    login_keys,
    login_limiter,
    reading,
    redirect,
    render,
    safe_next,
    start_session,
)
from partnerpay.web.security import staff_from_session

router = APIRouter(route_class=PageRoute)

BAD_LOGIN = "That email and password do not match a staff account. Check both and try again."


def _login_page(
    request: Request, *, next_path: str | None, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    return render(
        request,
        "login.html",
        {
            "area": "console",
            "title": "Staff login",
            "action": "/login",
            "next": safe_next(next_path, "/"),
            "email": email,
            "error": error,
            "other": ("/portal/login", "Partner? Log in to the partner portal"),
        },
        status_code=status,
    )


@router.get("/login")
def login_form(request: Request) -> Response:
    with reading(request) as session:
        if staff_from_session(request, session) is not None:
            return redirect(safe_next(request.query_params.get("next"), "/"))
    return _login_page(request, next_path=request.query_params.get("next"))


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    login_limiter(request).hit(*login_keys(request, "staff", email), what="login attempts")
    with reading(request) as session:
        user = authenticate_staff(session, email, password) if email.strip() and password else None
    if user is None:
        return _login_page(request, next_path=next, email=email.strip(), error=BAD_LOGIN, status=401)
    start_session(request, "staff_id", user.id)
    return redirect(safe_next(next, "/"))


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form_csrf(request, csrf_token)
    end_session(request, "staff_id")
    return redirect("/login")
