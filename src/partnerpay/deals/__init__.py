"""Leads and deals partners register, their conflicts, pipeline stages and update requests."""
