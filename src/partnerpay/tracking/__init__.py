"""Referral links, clicks, coupons and attribution: how partnerpay knows who brought a customer."""
