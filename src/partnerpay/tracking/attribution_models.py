"""Attribution decisions and fraud flags (filled in by the attribution work)."""
