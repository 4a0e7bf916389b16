"""digest: gathers news feeds, groups and ranks the stories, and mails a digest to subscribers."""

__version__ = "0.1.0"
__all__ = ["__version__"]
