"""Public pages: application forms, invitation links."""
