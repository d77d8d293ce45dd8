"""All v1 routes under /api/v1."""

from fastapi import APIRouter

from partnerpay.web.api.v1 import commissions, events, ledger, payouts, programs

api = APIRouter(prefix="/api/v1")
for module in (programs, events, commissions, payouts, ledger):
    api.include_router(module.router)
