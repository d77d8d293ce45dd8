"""Commission plans: versioned, effective-dated rules and which plan applies to which partner (issue 6)."""
