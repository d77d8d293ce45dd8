"""Messages and notifications to partners."""
