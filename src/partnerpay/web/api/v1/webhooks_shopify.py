"""Shopify webhook endpoint (see webhooks.py for the shared answers). SKELETON: filled in by issue 5."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
