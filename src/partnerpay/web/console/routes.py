"""The staff console: every page needs a staff login (else a redirect to /login)."""

from fastapi import APIRouter

from partnerpay.web.console import auth, commissions, dashboard, jobs, partners, payouts

router = APIRouter()
for module in (auth, dashboard, partners, commissions, payouts, jobs):
    router.include_router(module.router)
