"""Providers outside partnerpay (SMTP, payment and CRM APIs), each behind a small interface."""
