"""Subscriber input, checked before it reaches the store: an address, a name, a time zone,
a locale, topics. Every door a person comes in by (the CLI, CSV import, the sign-up form,
the console) calls these, so a rule is written once."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from digest.config.models import check_timezone, no_source_has, stranded, unknown_topics
from digest.render.i18n import check_locale
from digest.states import SUBSCRIBER_STATUSES, SubscriberStatus

# Every status the store writes: an export of everyone imports as it was, suppressions kept.
STATUSES = SUBSCRIBER_STATUSES
NAME_LIMIT = 200  # characters of a subscriber's name


@dataclass(frozen=True)
class NewSubscriber:
    """One valid row: a normalised address and its optional details."""

    email: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    timezone: str | None = None
    status: str = SubscriberStatus.ACTIVE
    locale: str | None = None


def normalise_email(raw: str) -> str:
    """The address in the one form the store keeps (lower case, ASCII); ValueError says what
    is wrong.

    digest sends without SMTPUTF8, so every address must be ASCII: an internationalised
    domain is kept in its ASCII (punycode) form, which reaches the same mailbox; a local part
    (before the @) that is not ASCII cannot be written any other way, so it is refused.
    """
    address = raw.strip()
    local, _, domain = address.rpartition("@")
    if len(local) <= 64 and len(address) <= 254 and _PLAIN_LOCAL.fullmatch(local):
        # The common case, as fast as an import of a million rows needs: a plain ASCII
        # local part, which validate_email keeps as it is, and a domain checked once.
        ascii_domain = _checked_domain(domain)
        if ascii_domain is not None:
            return f"{local}@{ascii_domain}".lower()
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if "@" in address and not address.rpartition("@")[0].isascii():
            raise ValueError(
                f"{address!r} cannot be sent to: the part before the @ has non-ASCII "
                "characters, which needs SMTPUTF8, and digest sends plain SMTP"
            ) from exc
        raise ValueError(f"{address!r} is not a valid address: {exc}") from exc
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return checked.ascii_email.lower()


# A dot-atom of RFC 5322 letters, at most 64 characters: what validate_email accepts as a
# local part and gives back unchanged.
_PLAIN_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The domain in the ASCII form validate_email gives, or None when it refuses it (the
    full check then says why); an import's rows share a few domains."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.ascii_domain


def stored_form(raw: str) -> str:
    """How the store would hold an address someone reports (a provider's bounce, a DSN, the
    admin): ``normalise_email``'s form, or, for one it refuses, the address in lower case
    (a row stored before addresses had to be ASCII is found as it was written)."""
    try:
        return normalise_email(raw)
    except ValueError:
        return raw.strip().lower()


# Characters no name holds: controls (CR, LF, tab, NUL...), line and paragraph separators,
# the bidi embeddings, overrides and isolates that make a To header read backwards, and lone
# surrogates (a byte that is not UTF-8 on the command line), which no database or message holds.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_CONTROL_NAMES = {"\r": "a carriage return", "\n": "a line feed", "\t": "a tab"}


def _unprintable(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


def check_name(raw: str | None) -> str | None:
    """A subscriber's name, or None for none; ValueError says what is wrong.

    The one door every name comes in by (``subscribers add``, CSV import, the sign-up
    form). The name goes into the To header and the greeting of every email: a line break
    would be a header of its own (the message is then refused), so control characters are
    refused here rather than failing each edition later; one over ``NAME_LIMIT`` characters
    is surely not a name (a CSV column shifted, say).
    """
    name = (raw or "").strip()
    if not name:
        return None
    if len(name) > NAME_LIMIT:
        raise ValueError(
            f"the name {name[:30]!r}... is {len(name)} characters long; a name may have at "
            f"most {NAME_LIMIT}"
        )
    # str.isprintable is False for every character _unprintable names (and a few more):
    # the scan runs only then, which a million-row import notices.
    bad = None if name.isprintable() else next((c for c in name if _unprintable(c)), None)
    if bad is not None:
        what = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "")
        if not what:
            surrogate = unicodedata.category(bad) == "Cs"
            what = "a byte that is not UTF-8 text" if surrogate else "a control character"
        raise ValueError(
            f"the name {name[:60]!r} holds U+{ord(bad):04X} ({what}); a name is one line "
            "of printable text"
        )
    return name


def sendable_name(stored: str | None) -> str | None:
    """The name to greet a reader by, or None to write to them without one.

    A name stored before ``check_name`` refused control characters would fail every
    message to its reader; the reader would rather get the email without their name.
    """
    try:
        return check_name(stored)
    except ValueError:
        return None


def check_subscriber_timezone(raw: str | None) -> str | None:
    """An IANA time zone name, or None for none; ValueError says what is wrong."""
    return check_timezone(raw, otherwise="use a name like 'Europe/Paris'") if raw else None


def check_subscriber_locale(raw: str | None) -> str | None:
    """A locale code such as 'fr' or 'pt_BR', or None for none; ValueError says what is wrong."""
    return check_locale(raw) if raw else None


def check_topics(chosen: Sequence[str], known: Collection[str]) -> None:
    """ValueError naming the topics of ``chosen`` that are not ``known`` (the sources').

    A reader is sent only stories of their topics, and only sources give stories topics:
    a misspelt topic would have every edition skip them without a word.
    """
    unknown = unknown_topics(chosen, known)
    if unknown:
        raise ValueError(no_source_has(unknown))


def withdrawn_topics(choices: Mapping[str, int], known: Collection[str]) -> str:
    """`digest check`'s warning of readers who chose topics no source declares any more
    (``choices``: ``Store.topic_choice_counts``), or "". They keep their choice (their
    preferences page marks such a topic "no longer offered"), so a reader of such topics
    alone is sent nothing, edition after edition: the admin should hear of it."""
    gone: dict[str, int] = {}
    readers = left_with_none = 0
    for choice, count in choices.items():
        chosen = [t for t in choice.split(",") if t]
        unknown = unknown_topics(chosen, known)
        for topic in unknown:
            gone[topic] = gone.get(topic, 0) + count
        readers += count if unknown else 0
        left_with_none += count if stranded(chosen, known) else 0
    if not gone:
        return ""
    each = ", ".join(f"{topic!r} ({n})" for topic, n in sorted(gone.items()))
    line = f"{_readers(readers)} chose topics no source has any more: {each}"
    if left_with_none:
        verb = "is" if left_with_none == 1 else "are"
        line += f"; {left_with_none} of them chose no other topic and {verb} sent nothing"
    return (
        f"{line}\n  hint: add the topic back to a [[sources]] table's topics, or ask these "
        "readers to choose again (their preferences page marks it no longer offered)"
    )


def _readers(count: int) -> str:
    return f"{count} reader{'s' if count != 1 else ''}"
