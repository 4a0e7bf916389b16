"""[rank]: the weights of the breaking score and the story thresholds."""

from __future__ import annotations

from pydantic import Field

from digest.config.models.base import _Model


class RankConfig(_Model):
    """The weights of the breaking score: each signal's contribution is shown by the ranker."""

    half_life_hours: float = Field(default=6.0, gt=0, description="freshness halves every N hours")
    recency_weight: float = Field(default=1.0, ge=0, description="weight of freshness (0..1)")
    source_weight: float = Field(default=0.5, ge=0, description="weight of the best source weight")
    coverage_weight: float = Field(
        default=1.0,
        ge=0,
        description="weight of the other sources carrying the story (each source's weight, "
        "one vote per source)",
    )
    velocity_weight: float = Field(
        default=0.1, ge=0, description="weight per source (its vote) that joined the story lately"
    )
    growth_weight: float = Field(
        default=1.0,
        ge=0,
        description="weight per vote a young story can expect still to come, learned from how "
        "the story memory's stories grew; 0: off",
    )
    velocity_hours: float = Field(
        default=3.0, gt=0, description="a source joined lately: its first article is this recent"
    )
    cue_weight: float = Field(
        default=0.5, ge=0, description="bonus for 'breaking', 'live', 'developing' in a title"
    )
    sent_lookback_editions: int = Field(
        default=3,
        ge=0,
        le=100,
        description="earlier editions remembered as sent: the last this many, and every one "
        "within story_memory_hours; 0: none",
    )
    overlap_discount: float = Field(
        default=0.1,
        ge=0,
        description="sources that usually carry the same stories share their coverage "
        "vote; 0: every source a full vote",
    )
    rerun_discount: float = Field(
        default=1.0,
        ge=0,
        description="a source that habitually runs a story in more articles than sources "
        "usually do gets a smaller vote: (usual articles per story / its own) to this "
        "power, learned from the story memory, each source against its long run the store "
        "keeps; 0: off",
    )
    breadth_weight: float = Field(
        default=8.0,
        ge=0,
        description="a general newsroom's vote counts more than a specialist's: (how much "
        "what a source carries alongside looks like what every source carries, over the "
        "sources' mean) to this power, learned over every story the store has tallied, "
        "once it has a few thousand; 0: off",
    )
    breaking_min_sources: int = Field(
        default=2, ge=1, description="a story needs this many sources to be 'Breaking'"
    )
    breaking_min_score: float = Field(
        default=1.85, description="and a score of at least this to be 'Breaking'"
    )
    story_similarity: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="cosine similarity of an article's headline and URL words to a story's "
        "that makes it join the story",
    )
    merge_similarity: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="cosine similarity at which two stories become one (also once each "
        "story's words are widened by the words the other stories show them to go with)",
    )
    story_gap_hours: float = Field(
        default=6.0,
        gt=0,
        description="a story goes quiet: an article published this many hours from all of "
        "its articles starts a new story, which the sent penalty knows as a follow-up",
    )
    story_memory_hours: float = Field(
        default=48.0,
        gt=0,
        description="stories are remembered this many hours back: a follow-up of one, or "
        "one an earlier edition sent, is recognised within it",
    )
