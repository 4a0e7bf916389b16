"""Items no one wrote as news: a blog engine's default first post, a test post, filler text.

A site sometimes publishes what its software made up or what someone typed to try it out:
WordPress's "Hello world!" and "Sample Page", Facebook's "My first Instant Article", a
"Test post", a body of lorem ipsum. Mailed, it reads as the news of the day; so gather
leaves such an item out (``without_placeholders``), each with a note naming it, which
gather logs under the source's name and `digest gather` prints.

The rule is conservative, since a real headline must never go: a title counts only when
the whole of it is a known default ("Hello, world: the first image from the new telescope"
is news), and text counts as filler only when it starts "Lorem ipsum" and goes on in the
filler's Latin ("Lorem Ipsum publisher sold" is news, and so is a summary that starts
"Lorem ipsum is the text designers...").
"""

from __future__ import annotations

import re

from digest.records import FeedItem

# Whole titles that blog engines, CMSs and sample feeds give their made-up first items, and
# that people give a post written to try a feed out; compared as ``_words`` writes them.
_DEFAULT_TITLES = frozenset(
    {
        "hello world",  # WordPress's first post ("Hello world!"), Hexo's, many tutorials'
        "sample page",  # WordPress's first page
        # WordPress's first post and page as it names them in the languages the email
        # speaks (pt, es, fr, de) and a few more.
        "olá mundo",
        "página de exemplo",
        "hola mundo",
        "página de ejemplo",
        "bonjour tout le monde",
        "page d exemple",
        "hallo welt",
        "beispiel seite",
        "ciao mondo",
        "pagina di esempio",
        "hallo wereld",
        "voorbeeldpagina",
        "sample post",
        "example post",
        "my first post",  # Hugo's quick start, and many a blog's
        "my first blog post",
        "my first article",
        "my first instant article",  # Facebook Instant Articles' sample feed
        "welcome to jekyll",  # Jekyll's first post ("Welcome to Jekyll!")
        "test",
        "testing",
        "test post",
        "test article",
        "test entry",
        "test item",
        "test page",
        "test story",
        "this is a test",
        "this is a test post",
        "lorem ipsum",
    }
)
# How the default posts' own bodies begin, compared as ``_words`` writes them: a default
# post left under a title of the admin's is still the default post.
_DEFAULT_BODIES = (
    "welcome to wordpress this is your first post",
    "this is an example page it s different from a blog post",
)
# The Latin of lorem ipsum filler: the classic passage, its older "consectetuer" variant,
# and the words generators (lipsum.com and the like) draw on most.
_LATIN = """
lorem ipsum dolor sit amet consectetur consectetuer adipiscing adipisicing elit sed do
eiusmod tempor incididunt ut labore et dolore magna aliqua aliquam enim ad minim veniam
quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute
irure in reprehenderit voluptate velit esse cillum eu fugiat nulla pariatur excepteur
sint occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est
laborum diam nonummy nibh euismod tincidunt laoreet erat volutpat vestibulum curabitur
nullam pellentesque integer aenean maecenas mauris vivamus donec nunc phasellus praesent
proin quisque suspendisse morbi etiam fusce nam cras vel eget at nec a ac quam justo
ligula lectus tellus metus lacus purus arcu felis risus massa turpis orci leo odio neque
sapien ante mi eros augue nisl urna libero dui sem facilisi facilisis
"""
_LOREM = frozenset(_LATIN.split())
# Filler is told by its first words: past them, a real text has left the Latin.
_FILLER_WORDS = 8
_WORD = re.compile(r"\w+")


def placeholder(item: FeedItem) -> str:
    """Why ``item`` is a placeholder, not news ("its summary is lorem ipsum filler"); ""
    when it may be news."""
    title, summary = _words(item.title), _words(item.summary)
    if title in _DEFAULT_TITLES:
        return "its title is the default of a blog engine or a test post"
    if _filler(title):
        return "its title is lorem ipsum filler"
    if _filler(summary):
        return "its summary is lorem ipsum filler"
    if summary.startswith(_DEFAULT_BODIES):
        return "its text is a blog engine's default post"
    return ""


def _filler(words: str) -> bool:
    """True for lorem ipsum filler, ``words`` as ``_words`` writes a text: one that starts
    "Lorem ipsum" and whose first words are all the filler's Latin. A text about lorem
    ipsum soon leaves it ("Lorem ipsum is...")."""
    first = words.split(maxsplit=_FILLER_WORDS)[:_FILLER_WORDS]
    return first[:2] == ["lorem", "ipsum"] and all(w in _LOREM for w in first)


def without_placeholders(items: list[FeedItem]) -> tuple[list[FeedItem], list[str]]:
    """``items`` without the placeholders, and a note naming each one left out and why: the
    one rule for feeds, JSON Feeds, pages and sitemaps alike."""
    kept: list[FeedItem] = []
    notes: list[str] = []
    for item in items:
        reason = placeholder(item)
        if reason:
            notes.append(
                f"item {item.title[:80]!r} ({item.url}) left out: {reason}, not news "
                "(a placeholder or test item the site published; tell the site if it stays)"
            )
        else:
            kept.append(item)
    return kept, notes


def _words(text: str) -> str:
    """``text`` as its words, case-folded, one space apart: "Hello, World!" is "hello world"."""
    return " ".join(_WORD.findall(text.casefold()))
