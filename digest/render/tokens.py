"""Personalisation tokens: where each reader's links and greeting go in a rendered edition,
and how rendering makes sure only the templates can put one there.

A feed writes titles, links and summaries. Were a token in that text spliced like the real
ones, every reader's personal unsubscribe link would land in a link of the feed's choosing.
So ``render_edition`` hands the templates the tokens spelled with a random nonce no feed can
know (``Nonce.tokens``), and ``Nonce.settle`` then turns those back into the plain tokens
and defuses every other ``DIGESTx`` in the output: whatever a feed wrote (in one field or
across two) is never a token afterwards. The edition is stored with plain tokens, so a retry
or a resumed send personalises it as before, with nothing more to store.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

# Plain ASCII letters only, so neither premailer nor autoescaping changes them.
_PREFIX = "DIGESTx"
UNSUBSCRIBE_URL = "DIGESTxUNSUBSCRIBExURL"
PREFERENCES_URL = "DIGESTxPREFERENCESxURL"
GREETING = "DIGESTxGREETING"
TOKENS = (UNSUBSCRIBE_URL, PREFERENCES_URL, GREETING)
# Any token of a settled edition, as a group (so ``split`` keeps it). Substitute with it in
# one pass: a value put in is never scanned again.
PATTERN = re.compile(f"({'|'.join(TOKENS)})")

_DEFUSED = "DIGEST-x"  # what a token-like string from a source reads as once settled
# A token as the templates print it (``DIGESTx<nonce>x...``), or any other ``DIGESTx``.
_SPELLED = re.compile(f"{_PREFIX}([0-9a-f]{{16}}x)?")


def defuse(text: str) -> str:
    """``text`` with no token in it: for values that must never be read as one."""
    return text.replace(_PREFIX, _DEFUSED)


@dataclass(frozen=True)
class Nonce:
    """One render's secret spelling of the tokens."""

    value: str = field(default_factory=lambda: secrets.token_hex(8))

    def tokens(self) -> dict[str, str]:
        """Each plain token's spelling for this render: what the templates print."""
        return {t: t.replace(_PREFIX, f"{_PREFIX}{self.value}x", 1) for t in TOKENS}

    def settle(self, text: str) -> str:
        """``text`` with this render's tokens made plain and every other token defused."""
        # One pattern for every nonce: a pattern spelled with each render's own filled the
        # `re` module's cache with a compiled pattern per render.
        mine = f"{self.value}x"
        return _SPELLED.sub(
            lambda m: _PREFIX if m.group(1) == mine else _DEFUSED + (m.group(1) or ""), text
        )
