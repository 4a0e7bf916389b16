"""The web stage: the subscriber-facing pages, over the same store and links as the email."""

from digest.web.app import create_app

__all__ = ["create_app"]
