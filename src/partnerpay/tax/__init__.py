"""Tax reports of payouts (issue 7, part 8): the 1099-NEC report and self-billing invoices."""
