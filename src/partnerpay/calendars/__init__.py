"""Calendars: per-user ICS feeds and the Google Calendar sync of scheduled payouts and deal follow-ups."""
