"""Currency conversion with recorded rates (issue 6): a per-program rate table and exact integer conversion."""
