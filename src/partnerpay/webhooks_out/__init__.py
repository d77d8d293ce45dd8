"""Outgoing webhooks: program subscriptions, signed deliveries through the outbox, a delivery log with replay."""
