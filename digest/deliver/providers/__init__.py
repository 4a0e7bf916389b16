"""HTTP API providers, each a Sender registered under its name."""

from . import mailgun, postmark, resend, sendgrid, ses

__all__ = ["mailgun", "postmark", "resend", "sendgrid", "ses"]
