"""Smart alerts: per-program rules evaluated by the scheduler, raised once per (rule, subject, period)."""
