"""partnerpay: a self-hosted partner program system."""

__version__ = "0.1.0"
