"""Payout file formats and senders.

csv_file: the generic CSV; sepa: SEPA pain.001 XML; nacha: NACHA ACH records. The bank-file
builders are pure functions of the plain values in rail_items (no database, no clock).
"""
