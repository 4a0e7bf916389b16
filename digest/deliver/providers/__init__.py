"""HTTP API providers, each a Sender registered under its name."""

from . import postmark, resend, sendgrid

__all__ = ["postmark", "resend", "sendgrid"]
