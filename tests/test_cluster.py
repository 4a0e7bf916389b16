"""Story clustering: headline and slug terms, joining, incremental ids and merging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digest.config import RankConfig
from digest.rank import StoryIndex, article_terms, assign_stories
from digest.rank.associate import agreement
from digest.rank.cluster import cosine
from digest.rank.terms import fold, slug_terms, title_terms
from digest.records import ArticleRecord


def test_title_terms_fold_case_and_accents_drop_stop_words_and_stem() -> None:
    assert title_terms("BREAKING: Zürich votes on the new Tram lines") == [
        "zurich",
        "vote",
        "tram",
        "line",
    ]


def test_title_terms_stem_in_the_article_language() -> None:
    assert title_terms("Les élections municipales", "fr") == title_terms(
        "élection municipale", "fr-FR"
    )
    assert title_terms("Wahlen", "xx") == title_terms("Wahlen", None)  # unknown: English


def test_slug_terms_read_the_headline_in_the_url_and_skip_ids() -> None:
    url = "https://news.test/2014/04/11/heartbleed-bug-hits-cisco-routers-9f8e7d6c5b4a3f2e1d0c.html?utm=x"
    assert slug_terms(url) == ["heartble", "bug", "hit", "cisco", "router"]
    assert slug_terms("https://news.test/world/253018") == []  # no slug, no words


def test_a_slug_word_counts_once_beside_the_title() -> None:
    terms = article_terms(
        "Cisco patches", "https://n.test/cisco-cisco-cisco-patch", slug_weight=0.5
    )
    assert terms == {"cisco": 1.5, "patch": 1.5}


STORM = [
    (1, "Storm Isolde makes landfall, leaving 40,000 homes without power", "https://wire.test/a"),
    (2, "Storm Isolde landfall leaves 40,000 homes without power", "https://gazette.test/b"),
    (3, "Live: Storm Isolde makes landfall as 40,000 homes lose power", "https://report.test/c"),
]
OTHER = [
    (4, "Central bank holds interest rates at 4.25%", "https://wire.test/d"),
    (5, "Local runner sets course record at city marathon", "https://gazette.test/e"),
]


def test_the_same_story_from_several_outlets_is_one_story_and_others_are_not() -> None:
    index = StoryIndex()
    for i, title, url in STORM + OTHER:
        index.add(i, title, url)
    assert index.assignments() == {1: 1, 2: 1, 3: 1, 4: 4, 5: 5}


def test_a_story_is_named_by_its_first_article_and_keeps_its_stored_id() -> None:
    """Yesterday's stored membership is taken as is; today's article joins that story."""
    index = StoryIndex()
    index.add(10, STORM[0][1], STORM[0][2], story_id=7)  # stored: story 7
    index.add(11, OTHER[0][1], OTHER[0][2], story_id=11)
    assert index.add(12, STORM[1][1], STORM[1][2]) == 7
    assert index.add(13, "Volcano erupts on remote island", "https://x.test/f") == 13
    assert index.assignments() == {10: 7, 11: 11, 12: 7, 13: 13}


def test_a_stored_article_joins_its_stored_story_and_agreeing_stories_merge_later() -> None:
    """``add`` does not re-decide a stored membership; ``assignments`` may still merge it."""
    index = StoryIndex()
    index.add(1, STORM[0][1], STORM[0][2])
    assert index.add(2, STORM[1][1], STORM[1][2], story_id=2) == 2  # stored apart
    assert index.add(3, OTHER[0][1], OTHER[0][2]) == 3
    assert index.assignments() == {1: 1, 2: 1, 3: 3}  # same words: one story, older id


def test_stories_whose_words_come_to_agree_merge_under_the_older_id() -> None:
    """Two stories started apart; once both have grown alike, ``assignments`` merges them."""
    index = StoryIndex(similarity=0.9, merge=0.3)  # joining is strict, merging is not
    index.add(5, "Heartbleed bug: banks check their servers", "")
    index.add(9, "Heartbleed bug: banks and shops check servers", "")
    index.add(3, "Parliament votes on the budget", "")
    assert index.assignments() == {5: 5, 9: 5, 3: 3}


def test_an_article_without_words_starts_its_own_story() -> None:
    index = StoryIndex()
    index.add(1, "", "")
    index.add(2, "!!!", "https://x.test/")
    index.add(3, "The", "")
    assert index.assignments() == {1: 1, 2: 2, 3: 3}


def test_merging_follows_renamed_stories_for_later_adds() -> None:
    index = StoryIndex(similarity=0.9, merge=0.3)
    index.add(5, "Heartbleed bug: banks check their servers", "")
    index.add(9, "Heartbleed bug: banks and shops check servers", "")
    index.assignments()  # 9's story merges into 5's
    assert index.add(12, "Elections called", "", story_id=9) == 5


def test_other_scripts_keep_their_letters_and_cjk_runs_become_bigrams() -> None:
    assert fold("Май, で, Zürich") == "май, で, zurich"
    assert title_terms("Выборы", "ru") == ["выбор"]  # stemmed in Russian
    assert title_terms("Crème brûlée") == ["creme", "brule"]
    assert title_terms("東京で大地震") == ["東京", "京で", "で大", "大地", "地震"]
    index = StoryIndex()
    index.add(1, "東京で大地震、津波注意報", "")
    index.add(2, "東京 大地震 津波注意報を発表", "")
    index.add(3, "大阪で新しい美術館が開館", "")
    assert index.assignments() == {1: 1, 2: 1, 3: 3}


def test_one_wire_summary_under_different_headlines_joins_but_never_outweighs_them() -> None:
    wire = (
        "Storm Isolde came ashore near Port Calder before dawn with gusts of 140 km/h; "
        "utility crews said 40,000 homes were without power and ferries were suspended."
    )
    assert article_terms("Isolde hits", summary=wire)["isold"] == 1.4  # headline 1 + summary 0.4
    index = StoryIndex()
    index.add(1, "Isolde hits the coast", "", summary=wire)
    index.add(2, "Night of gales at Port Calder", "", summary=wire)
    index.add(3, "Ferries suspended, thousands in the dark", "")  # headline alone: too far
    assert index.assignments() == {1: 1, 2: 1, 3: 3}
    alone = StoryIndex()
    alone.add(1, "Isolde hits the coast", "")
    alone.add(2, "Night of gales at Port Calder", "")
    assert alone.assignments() == {1: 1, 2: 2}  # without the summary they are apart


MORNING = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def _at(hours: float) -> datetime:
    return MORNING + timedelta(hours=hours)


def test_a_story_takes_articles_within_the_gap_and_a_later_one_follows_it() -> None:
    """Articles 9 h apart keep joining (the story keeps going); one 20 h after the story's
    last article starts a story that follows it; the 12-hour gap is counted from the story's
    nearest article, so arrival order (here shuffled) does not matter."""
    index = StoryIndex(gap_hours=12)
    index.add(1, STORM[0][1], STORM[0][2], at=_at(0))
    index.add(3, STORM[2][1], STORM[2][2], at=_at(18))  # 18 h after 1: too far, for now
    index.add(2, STORM[1][1], STORM[1][2], at=_at(9))  # 9 h after 1, 9 h before 3
    index.add(4, STORM[1][1], "https://late.test/g", at=_at(38))  # 20 h after the last
    index.add(5, OTHER[0][1], OTHER[0][2], at=_at(38))
    assert index.assignments() == {1: 1, 2: 1, 3: 1, 4: 4, 5: 5}  # 3 joined when 2 bridged
    assert index.continuations() == {4: 1}
    timeless = StoryIndex()
    for i, (_, title, url) in enumerate([*STORM, (0, STORM[1][1], "https://late.test/g")], 1):
        timeless.add(i, title, url, at=_at(20 * i))
    assert set(timeless.assignments().values()) == {1}  # no gap: one story over days


def test_agreeing_stories_far_apart_in_time_do_not_merge_but_follow() -> None:
    index = StoryIndex(similarity=0.9, merge=0.3, gap_hours=12)
    index.add(5, "Heartbleed bug: banks check their servers", "", at=_at(0))
    index.add(9, "Heartbleed bug: banks and shops check servers", "", at=_at(30))
    index.add(3, "Heartbleed bug: banks check servers again", "", at=_at(1))
    assert index.assignments() == {5: 3, 3: 3, 9: 9}
    assert index.continuations() == {9: 3}


def test_a_lone_article_far_in_time_follows_only_at_the_merging_threshold() -> None:
    """A story of one article merges at the joining threshold within the gap (what its
    article would have joined), but a follow-up link across the gap needs merging's
    agreement: a headline sharing one word with yesterday's story is a story of its own,
    not the next chapter of it; the same headline again is."""
    index = StoryIndex(similarity=0.2, merge=0.3, gap_hours=12)
    for i, (_, title, url) in enumerate(STORM, 1):
        index.add(i, title, url, at=_at(i))
    # about 0.27 like the storm story, by "leaves", "homes", "without"
    index.add(8, "Kansas tornado leaves homes without water", "", at=_at(40))
    index.add(9, STORM[0][1], "https://late.test/i", at=_at(60))
    assert index.assignments()[8] == 8
    assert 8 not in index.continuations()
    assert index.continuations()[9] == 1


def test_assign_stories_dates_an_article_by_publication_unless_it_is_in_the_future() -> None:
    """A feed that dates its article a day ahead (a wrong clock) is placed when it arrived,
    so it still joins the story it reached digest with."""

    def record(i: int, title: str, published: float, seen: float) -> ArticleRecord:
        return ArticleRecord(i, "S", title, "", "", _at(published), first_seen_at=_at(seen))

    stories = assign_stories(
        [
            record(1, STORM[0][1], 0, 0),
            record(2, STORM[1][1], 24, 0.5),  # claims tomorrow, arrived with 1
            record(3, STORM[2][1], -30, 1),  # published well before: an older story
        ],
        RankConfig(),
    )
    assert stories.story_of == {1: 1, 2: 1, 3: 3}
    assert stories.follows == {1: 3}


def test_of_several_earlier_stories_a_follow_up_takes_up_the_oldest() -> None:
    """Stories 1 and 2, 20 hours apart, both agree with story 3, 40 hours after 2: 3 follows
    1, the oldest, whichever it was compared with last."""
    index = StoryIndex(similarity=0.9, merge=0.3, gap_hours=12)
    index.add(1, "Heartbleed bug banks servers", "", at=_at(0))
    index.add(2, "Heartbleed bug shops passwords", "", at=_at(20))
    index.add(3, "Heartbleed bug banks shops servers passwords", "", at=_at(60))
    assert index.assignments() == {1: 1, 2: 2, 3: 3}
    assert index.continuations()[3] == 1


def test_a_story_without_a_time_does_not_join_stories_far_apart() -> None:
    """Two untimed articles make the biggest story; it may absorb one timed story, but not
    then a second 100 hours from the first."""
    index = StoryIndex(similarity=0.9, merge=0.3, gap_hours=12)
    index.add(1, "Heartbleed bug: banks check their servers", "", at=_at(0))
    index.add(2, "Heartbleed bug: banks and shops check servers", "", at=_at(100))
    index.add(3, "Heartbleed bug: banks check servers again", "")
    index.add(4, "Heartbleed bug: banks check servers again", "")
    stories = index.assignments()
    assert stories[3] == stories[4]
    assert stories[1] != stories[2]


def test_an_early_lone_article_joins_the_story_that_formed_after_it() -> None:
    """A story of one article merges at the joining threshold, not merging's: its article
    would have joined the story had the story existed when it arrived."""
    index = StoryIndex(similarity=0.25, merge=0.9)
    index.add(1, "Dockers strike harbour Felixstowe")  # first, when nothing else was known
    index.add(2, "Dockers union ballot wages offer tonight")  # too unlike it: a story of its own
    for i, word in enumerate(["Monday", "Tuesday", "vote", "talks", "deal", "pay"], 3):
        index.add(i, f"Dockers strike ballot wages offer {word}")  # the story grows around 2
    assert set(index.assignments().values()) == {1}  # one story, under the older id


def test_stories_out_of_reach_leave_the_look_up_but_are_still_followed() -> None:
    """A look-up costs the same however long the run: a story whose newest article is more
    than the gap (and a day's slack) behind leaves the index; merging still finds it."""
    index = StoryIndex(similarity=0.9, merge=0.3, gap_hours=6)
    index.add(1, "Heartbleed bug: banks check their servers", "", at=_at(0))
    for day in range(1, 200):  # a story a day about the markets, each its own
        index.add(100 + day, f"Markets close day{day} session{day}", "", at=_at(24 * day))
    assert len(index._index["market"]) <= 3  # only the stories still within reach
    index.add(2, "Heartbleed bug: banks and shops check servers", "", at=_at(24 * 200))
    assert index.assignments()[2] == 2 and index.continuations()[2] == 1


# Earlier days' market wraps, each a story of three sources and each a day apart: "Wall
# Street" and "Dow" are among the heaviest words of every one of them.
MARKET_DAYS = [
    ("Dow Jones slips as Wall Street weighs Fed", "Wall Street: Dow Jones edges lower on Fed"),
    ("Dow Jones climbs as Wall Street cheers jobs", "Wall Street rallies, Dow Jones up"),
    ("Dow Jones dips, Wall Street eyes earnings", "Wall Street pauses; Dow Jones before earnings"),
    ("Dow Jones record as Wall Street shrugs off Ukraine", "Wall Street record: Dow Jones tops"),
]
# The day in question: two groups of sources say the same thing in words with none in common.
WALL_STREET = ["Wall Street ends lower", "Wall Street closes lower", "Wall Street ends session low"]
THE_DOW = ["Dow Jones slides", "Dow Jones drops", "Dow Jones falls"]


def _market_index(history: bool) -> StoryIndex:
    index = StoryIndex(gap_hours=6)
    article = 0
    if history:
        for day, (one, other) in enumerate(MARKET_DAYS):
            for title in (one, other, one):
                article += 1
                index.add(article, title, at=_at(24 * day))
    for titles, first in ((WALL_STREET, 101), (THE_DOW, 201)):
        for i, title in enumerate(titles):
            index.add(first + i, title, at=_at(24 * len(MARKET_DAYS) + 0.1 * i))
    return index


def test_paraphrases_merge_through_words_the_stream_showed_to_go_together() -> None:
    # "Wall Street ends lower" and "Dow Jones slides" share no word, so word overlap keeps
    # them apart; earlier stories in which "Wall Street" and "Dow" kept coming together
    # make them one story, under the older id.
    stories = _market_index(history=True).assignments()
    assert {stories[i] for i in (101, 102, 103, 201, 202, 203)} == {101}
    assert len({stories[i] for i in range(1, 13)}) == len(MARKET_DAYS)  # days stay apart


def test_without_such_history_the_paraphrases_stay_apart() -> None:
    stories = _market_index(history=False).assignments()
    assert {stories[i] for i in (101, 102, 103)} == {101}
    assert {stories[i] for i in (201, 202, 203)} == {201}


def test_stories_sharing_only_a_common_word_do_not_merge_by_association() -> None:
    index = _market_index(history=True)
    later = _at(24 * len(MARKET_DAYS) + 0.5)
    for i, title in enumerate(APPLE + OIL):
        index.add(301 + i, title, at=later)
    stories = index.assignments()
    assert {stories[301 + i] for i in range(len(APPLE))} == {301}
    assert {stories[301 + len(APPLE) + i] for i in range(len(OIL))} == {301 + len(APPLE)}
    assert stories[101] not in (301, 301 + len(APPLE))


APPLE = [
    "Apple iPhone sales beat forecasts; shares rise",
    "Apple iPhone sales top estimates",
    "Apple sells record number of iPhones",
]
OIL = [
    "Crude oil gains on Libya supply worries; shares rise",
    "Oil gains as Libya supply stalls",
    "Libya supply worries lift crude oil",
]


def test_an_agreement_carried_by_one_word_is_no_agreement() -> None:
    """Association merges need agreement spread over words: "Windows XP support ends" and
    "Office for the iPad" share "microsoft" and nothing else, however far expansion
    spreads its weight."""
    windows_xp = {"microsoft": 0.8, "window": 0.5, "xp": 0.33}
    office_ipad = {"microsoft": 0.8, "offic": 0.45, "ipad": 0.4}
    assert cosine(windows_xp, office_ipad) > 0.6  # what the merge compared before
    assert agreement(windows_xp, office_ipad) == 0.0
    wall_street = {"wall": 0.6, "street": 0.6, "dow": 0.4, "jone": 0.3}
    the_dow = {"dow": 0.6, "jone": 0.6, "wall": 0.4, "street": 0.35}
    assert agreement(wall_street, the_dow) == cosine(wall_street, the_dow) > 0.7
    assert agreement(windows_xp, {"sbarro": 1.0}) == 0.0  # nothing in common
