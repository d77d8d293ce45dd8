"""Approval policies per program: who approves lines, auto-approval, maker-checker thresholds, SLAs, batches."""
