"""The embedded default's news: four made-up outlets whose stories overlap, as real ones do.

Times are minutes before the demo runs, so the sample is always inside the digest's window.
Every item is invented for the demo; names of outlets, places and people are fictional.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.demo.pictures import DemoPicture


@dataclass(frozen=True)
class DemoItem:
    """One sample article."""

    slug: str
    minutes_ago: int
    title: str
    summary: str
    # Its picture, drawn by the demo (digest.demo.pictures); most stories have one, as most
    # news does, and their shapes differ (2:1, 16:9, 4:3, square), as real pictures do.
    picture: DemoPicture | None = None


@dataclass(frozen=True)
class DemoOutlet:
    """One sample source and the format its feed is written in."""

    name: str
    file: str
    format: str  # rss | atom | json
    site: str
    topics: tuple[str, ...]
    weight: float
    items: tuple[DemoItem, ...]


OUTLETS: tuple[DemoOutlet, ...] = (
    DemoOutlet(
        name="Harbour Wire",
        file="harbour-wire.xml",
        format="rss",
        site="https://harbourwire.example",
        topics=("world", "business"),
        weight=1.5,
        items=(
            DemoItem(
                "storm-isolde-landfall",
                55,
                "Storm Isolde makes landfall, leaving 40,000 homes without power",
                "<p>Storm Isolde came ashore near Port Calder before dawn with gusts of "
                "140 km/h. Utility crews said <b>40,000 homes</b> were without power and "
                "ferries were suspended until further notice.</p>",
                picture=DemoPicture(
                    1200,
                    600,
                    "Waves over the harbour wall at Port Calder at dawn",
                    ("#3b4a5c", "#8a9bb0"),
                    "#2c3e50",
                    "#d9dee5",
                ),
            ),
            DemoItem(
                "central-bank-holds",
                190,
                "Central bank holds interest rates at 4.25% as inflation cools",
                "Policy makers voted 7-2 to keep the main rate unchanged, citing a third "
                "month of easing prices and a cooling labour market.",
                picture=DemoPicture(
                    1200,
                    675,
                    "The central bank's columns in winter light",
                    ("#f3d9b1", "#e9b77c"),
                    "#8c6d4f",
                    "#fff4e0",
                ),
            ),
            DemoItem(
                "metro-night-service",
                300,
                "City council approves 24-hour weekend metro service",
                "Trains on the two busiest lines will run through Friday and Saturday "
                "nights from March, the council decided after a 38-13 vote.",
            ),
            DemoItem(
                "grain-exports-deal",
                420,
                "Grain export corridor reopens after three-week standoff",
                "The first convoy of twelve bulk carriers left port on Thursday under "
                "the renewed agreement.",
                picture=DemoPicture(
                    1024,
                    768,
                    "Bulk carriers leaving port in convoy",
                    ("#9fc5e8", "#e6f0f7"),
                    "#c9a227",
                    "#fff8d6",
                ),
            ),
            DemoItem(
                "airline-strike-called-off",
                610,
                "Cabin crew call off holiday strike after last-minute pay offer",
                "Union leaders accepted a 6% raise over two years, ending the threat of "
                "walkouts during the busiest travel weeks.",
            ),
            DemoItem(
                "museum-returns-artefacts",
                900,
                "National museum agrees to return 32 bronze artefacts",
                "The objects will travel home next spring under a loan-and-return deal "
                "negotiated over four years.",
                picture=DemoPicture(
                    800,
                    800,
                    "A bronze head in a museum case",
                    ("#2d2a26", "#5a4b3c"),
                    "#9c6b30",
                    "#e8c07d",
                ),
            ),
        ),
    ),
    DemoOutlet(
        name="Metro Gazette",
        file="metro-gazette.atom",
        format="atom",
        site="https://metrogazette.example",
        topics=("local", "world"),
        weight=1.0,
        items=(
            DemoItem(
                "isolde-coast-power",
                40,
                "Storm Isolde landfall leaves 40,000 homes without power along coast",
                "<p>Schools in three districts will stay closed on Monday. "
                "<img src=x onerror=alert(1)>Emergency shelters opened in Port Calder "
                "and Westmere.</p><script>document.location='https://evil.example'</script>",
            ),
            DemoItem(
                "rates-steady",
                170,
                "Central bank holds rates at 4.25%, signals cuts as inflation cools",
                "The governor said a cut in the spring was 'on the table' if the trend held.",
            ),
            DemoItem(
                "metro-all-night",
                280,
                "Council approves 24-hour weekend metro service from March",
                "Night-shift workers and venue owners welcomed the decision; the cost is "
                "put at 11 million a year.",
            ),
            DemoItem(
                "library-reopens",
                500,
                "Central library reopens after two-year restoration",
                "The 1904 reading room has its original skylight back, and opening hours "
                "now run to 10 p.m.",
                picture=DemoPicture(
                    1200,
                    675,
                    "The reading room under its restored dome",
                    ("#dfe9d8", "#b7ccb0"),
                    "#4f6d47",
                    "#fffbe8",
                ),
            ),
            DemoItem(
                "marathon-record",
                720,
                "Local runner sets course record at city marathon",
                "Amara Quist finished in 2:21:07, two minutes inside the old record.",
            ),
        ),
    ),
    DemoOutlet(
        name="Pacific Report",
        file="pacific-report.json",
        format="json",
        site="https://pacificreport.example",
        topics=("world", "science"),
        weight=1.2,
        items=(
            DemoItem(
                "live-isolde",
                25,
                "Live: Storm Isolde makes landfall as 40,000 homes lose power",
                "Follow our live coverage as the storm moves inland.",
            ),
            DemoItem(
                "deep-sea-species",
                240,
                "Researchers map 1,200 new deep-sea species in Pacific survey",
                "A six-week expedition using remote vehicles found sponges, corals and a "
                "translucent sea cucumber at depths below 4,000 metres.",
                picture=DemoPicture(
                    1200,
                    675,
                    "A translucent sea cucumber at 4,000 metres",
                    ("#06213d", "#0b4f6c"),
                    "#0a2a3a",
                    "#9be7ff",
                ),
            ),
            DemoItem(
                "reef-heat",
                650,
                "Reef heat stress eases for first time in three summers",
                "Satellite readings show cooler water over the northern reef since October.",
            ),
            DemoItem(
                "volcano-alert-lowered",
                980,
                "Volcano alert level lowered as eruption subsides",
                "Residents within the 5 km zone may return home from Sunday.",
                picture=DemoPicture(
                    1200,
                    800,
                    "Steam over the volcano's crater at dusk",
                    ("#5b2333", "#f28c28"),
                    "#3a2a24",
                    "#ffd29d",
                ),
            ),
        ),
    ),
    DemoOutlet(
        name="Ledger Tech",
        file="ledger-tech.xml",
        format="rss",
        site="https://ledgertech.example",
        topics=("technology", "business", "science"),
        weight=0.8,
        items=(
            DemoItem(
                "chip-2nm",
                130,
                "Chipmaker Veltro unveils 2-nanometre processor, shares jump 8%",
                "The new part promises 30% lower power draw; volume shipments start in "
                "the third quarter.",
                picture=DemoPicture(
                    1200,
                    675,
                    "A wafer of chips under clean-room light",
                    ("#0f3d3e", "#2a9d8f"),
                    "#14524f",
                    "#e9fff9",
                ),
            ),
            DemoItem(
                "rates-tech-lending",
                200,
                "Central bank holds interest rates steady at 4.25% as inflation cools",
                "Start-ups hoping for cheaper credit will have to wait, analysts said.",
            ),
            DemoItem(
                "deep-sea-survey",
                260,
                "Pacific survey maps 1,200 new deep-sea species",
                "Much of the footage will be released under an open licence.",
            ),
            DemoItem(
                "veltro-chip-shares",
                150,
                "Veltro shares jump 8% after 2-nanometre processor unveiled",
                "It is the company's biggest one-day gain in two years.",
            ),
            DemoItem(
                "open-maps",
                560,
                "Transit agencies publish open real-time data for 40 cities",
                "Developers can now build journey planners on a single shared format.",
            ),
        ),
    ),
)

SUBSCRIBERS: tuple[tuple[str, str], ...] = (
    ("ada@example.org", "Ada"),
    ("grace@example.org", "Grace"),
    ("linus@example.net", "Linus"),
)
