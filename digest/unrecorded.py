"""The journal of unrecorded sends, as files: where it moves its lines that are no entry,
where its batches on the wire keep their progress, and whether it holds anything.

The store keeps the journal (``store.journal``); `digest check` (``config._readiness``)
looks at the same files and may not import the store, so the rules live here, a leaf
both may import.
"""

from __future__ import annotations

from pathlib import Path


def rejected_file(journal: Path) -> Path:
    """Where the journal's lines that are no entry (a write cut short) are moved, once, for
    the admin: ``<file>.rejected`` beside it."""
    return journal.with_name(journal.name + ".rejected")


def progress_folder(journal: Path) -> Path:
    """Where each batch on the wire keeps its progress, a file per claim
    (``store.journal_progress``): ``<file>.progress/`` beside the journal."""
    return journal.with_name(journal.name + ".progress")


def holds_entries(journal: Path) -> bool:
    """Whether the journal holds anything (a stat); one never made holds nothing. Any other
    error on the file (OSError) is the caller's to report."""
    try:
        return journal.stat().st_size > 0
    except (FileNotFoundError, NotADirectoryError):  # (nothing was ever kept there)
        return False
