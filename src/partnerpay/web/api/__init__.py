"""The public REST API (/api/v1)."""
