"""Disputes: a partner's challenge of a line or claim of a missing commission, with evidence and a resolution."""
