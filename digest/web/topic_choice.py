"""A reader's topics as the pages that bring them back show and carry them: the way back
after leaving (their preferences page's button) and the expired confirmation link's new one.

The topics are kept as stored, those no source declares any more included (shown "no
longer offered", as the preferences page shows them): dropped, a reader of such topics
alone would come back to every topic, unasked, and a reader of others too would lose
them. A choice of such topics alone would bring the reader back to nothing, so the page
says so and asks them to choose (``STRANDED``) before a link is mailed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from digest.config.models import stranded, unknown_topics
from digest.render.i18n import N_

# The hidden field of a form that shows the topics: without it (a page from before the
# way back showed them, a script), an empty choice is not "every topic", and the stored
# choice stands.
CHOOSING = "choosing_topics"

# What a reader who asked to come back with only topics no longer offered is told.
STRANDED = N_("Choose a topic still offered, or none for all, to receive it again.")
# What a subscriber of such topics alone is told of them (the topics' box says it too).
NOTHING_SENT = N_(
    "Your topics are no longer offered, so nothing is sent to you: choose others, or none for all."
)


@dataclass(frozen=True)
class TopicChoice:
    """The topics a reader has chosen, against those the sources offer."""

    chosen: tuple[str, ...]  # as stored or as sent ((): every topic)
    offered: tuple[str, ...]  # ``Config.topics``
    # The reader's own that no source declares any more: shown "no longer offered", theirs
    # to keep or untick.
    withdrawn: tuple[str, ...] = ()

    @classmethod
    def of(cls, chosen: Sequence[str], offered: Sequence[str]) -> TopicChoice:
        """A reader's stored choice (empty names dropped)."""
        mine = tuple(t for t in chosen if t)
        return cls(mine, tuple(offered), tuple(unknown_topics(mine, offered)))

    @property
    def stranded(self) -> bool:
        """Only topics no source declares: the reader would be sent nothing."""
        return stranded(self.chosen, self.offered)

    def sent(self, form: Any) -> TopicChoice:
        """The choice a form sent, of the topics offered and the reader's own withdrawn
        ones (no others); this one when the form did not show the topics."""
        if form.get(CHOOSING) != "yes":
            return self
        allowed = (*self.offered, *self.withdrawn)
        picked = tuple(t for t in form.getlist("topics") if t in allowed)
        return TopicChoice(picked, self.offered, self.withdrawn)

    def fields(self) -> dict[str, Any]:
        """What the topics' fieldset (``_topics.html.j2``) shows of this choice."""
        return {
            "topics": list(self.offered),
            "withdrawn": list(self.withdrawn),
            "stranded": self.stranded,
            "entered": {"topics": set(self.chosen)},
            "choosing": CHOOSING,
        }
