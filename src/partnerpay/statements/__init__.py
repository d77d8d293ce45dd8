"""Partner statements (issue 8 part 1): per partner and period, from the ledger, with a verifiable hash."""
