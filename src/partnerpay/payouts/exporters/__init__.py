"""Payout file formats and senders."""
