"""The report's and the dashboard's charts: matplotlib figures drawn from the stats, as PNG bytes.

Figures are built with the object API (`Figure` on an Agg canvas), never through pyplot: pyplot
keeps global state, and the API renders charts on several threads at once. The drawing
functions take plain numbers and never touch the database; `render_charts` gathers the numbers
through the same queries as the CLI (stats, repositories, findings, trend; so the CLI filters
apply) and draws the charts asked for.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sqlmodel import Session

from miner.core.domain import Category
from miner.core.rules import Rules
from schema.filters import Filters

# Colours of the seed study's palette: used / not used, then the bars' single colour.
USED_COLOUR = "#2b6cb0"
UNUSED_COLOUR = "#cbd5e0"
BAR_COLOUR = "#2b6cb0"
BAND_COLOUR = "#90cdf4"
DPI = 100
# Findings per repository are heavy-tailed: buckets widen as counts grow.
FINDINGS_BUCKETS: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 1),
    (2, 2),
    (3, 5),
    (6, 10),
    (11, 20),
    (21, 50),
    (51, 100),
    (101, 200),
    (201, 500),
    (501, None),
)
GENERIC_AUTOLOG = "mlflow.autolog"  # the flavor label of a flavor-less autolog() call


class Chart(str, Enum):
    """Every chart, by the file name stem it is written and served under."""

    headline = "headline"
    categories = "categories"
    apis = "apis"
    autolog_flavors = "autolog_flavors"
    findings_per_repository = "findings_per_repository"
    trend = "trend"


CHART_TITLES: dict[Chart, str] = {
    Chart.headline: "Repositories calling log_param(s) / log_metric(s) / autolog",
    Chart.apis: "Share of repositories per api",
    Chart.categories: "Share of repositories per category",
    Chart.autolog_flavors: "Autolog by flavor",
    Chart.findings_per_repository: "Findings per repository",
    Chart.trend: "Headline share across crawls",
}

CHART_CAPTIONS: dict[Chart, str] = {
    Chart.headline: "Share of repositories whose latest successful run calls log_param, log_params, "
    "log_metric, log_metrics or an autolog that is not autolog(disable=True); "
    "n and the 95 % Wilson interval in the title.",
    Chart.categories: "Share of repositories using each category, fluent or through a client "
    "(client: any MlflowClient call; other: any other mlflow call).",
    Chart.apis: "Share of repositories calling each api of the rules table; bar labels give "
    "the repositories and their share.",
    Chart.autolog_flavors: "Repositories switching autolog on, per flavor (mlflow.autolog is the "
    "flavor-less call); a repository counts once per flavor it uses.",
    Chart.findings_per_repository: "MLflow calls found per repository in its latest successful "
    "run, in buckets that widen with the count.",
    Chart.trend: "Headline share of each crawl (each repository's latest successful run within "
    "it), with the 95 % interval as a band.",
}

# Charts drawn landscape, to span the page's width.
WIDE_CHARTS = frozenset({Chart.apis, Chart.trend})


def chart_card(chart: Chart) -> dict[str, Any]:
    """What a page needs to show a chart: file stem, title, caption, and whether it is wide."""
    return {
        "name": chart.value,
        "title": CHART_TITLES[chart],
        "caption": CHART_CAPTIONS[chart],
        "wide": chart in WIDE_CHARTS,
    }


def percent(share: float) -> str:
    return f"{100 * share:.1f} %"


def headline_title(headline: Mapping[str, Any], repositories: int) -> str:
    """`60.0 % of n = 5 repositories (95 % CI 23.1-88.2 %)`: the number the study quotes."""
    low, high = headline["ci95"]
    return (
        f"{percent(headline['share'])} of n = {repositories} repositories (95 % CI {100 * low:.1f}-{100 * high:.1f} %)"
    )


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG; no software or date metadata, so equal data gives equal files."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width_in: float = 8.0, height_in: float = 4.5) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def _empty(figure: Figure, title: str, message: str) -> Figure:
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#4a5568", transform=axes.transAxes)
    axes.set_axis_off()
    return figure


# -------------------------------------------------------------------------------- drawing


def headline_pie(headline: Mapping[str, Any], repositories: int) -> Figure:
    """The seed study's pie: repositories calling a headline api against the rest."""
    figure = _figure(7.0, 5.0)
    if repositories == 0:
        return _empty(figure, CHART_TITLES[Chart.headline], "no repositories mined yet")
    used = int(headline["repositories"])
    axes = figure.add_subplot()
    wedges, _texts, _autotexts = axes.pie(
        [used, repositories - used],
        labels=[f"calls one of them ({used})", f"calls none ({repositories - used})"],
        colors=[USED_COLOUR, UNUSED_COLOUR],
        autopct=lambda value: f"{value:.1f} %" if value > 0 else "",
        startangle=90,
        counterclock=False,
        wedgeprops={"edgecolor": "white", "linewidth": 1.5},
        textprops={"fontsize": 11},
    )
    wedges[0].set_label("headline")
    axes.set_aspect("equal")
    figure.suptitle(CHART_TITLES[Chart.headline], fontsize=12, fontweight="bold")
    axes.set_title(headline_title(headline, repositories), fontsize=11)
    return figure


def share_bars(
    entries: Mapping[str, Mapping[str, Any]], *, title: str, repositories: int, vertical: bool = False
) -> Figure:
    """Bars of the share of repositories per key (api or category), in the given order.

    Horizontal by default; `vertical` draws columns on a landscape figure for long lists.
    """
    if repositories == 0:
        return _empty(_figure(8.0, 3.0), title, "no repositories mined yet")
    names = list(entries)
    shares = [100 * float(entries[name]["share"]) for name in names]
    labels = [
        f"{entries[name]['repositories']}" if vertical else f"{entries[name]['repositories']} ({share:.0f} %)"
        for name, share in zip(names, shares)
    ]
    positions = list(range(len(names)))
    if vertical:
        figure = _figure(13.0, 4.8)
        axes = figure.add_subplot()
        bars = axes.bar(positions, shares, color=BAR_COLOUR, width=0.75)
        axes.set_xticks(positions, labels=names, rotation=45, ha="right", rotation_mode="anchor")
        axes.set_xlim(-0.6, len(names) - 0.4)
        axes.set_ylim(0, 100)
        axes.set_ylabel(f"% of n = {repositories} repositories")
        axes.grid(axis="y", alpha=0.3)
    else:
        figure = _figure(8.0, max(3.0, 0.32 * len(names) + 1.4))
        axes = figure.add_subplot()
        bars = axes.barh(positions, shares, color=BAR_COLOUR)
        axes.set_yticks(positions, labels=names)
        axes.invert_yaxis()  # table order from the top
        axes.set_xlim(0, 100)
        axes.set_xlabel(f"% of n = {repositories} repositories")
        axes.grid(axis="x", alpha=0.3)
    axes.bar_label(bars, labels=labels, padding=3, fontsize=8)
    axes.set_title(title)
    return figure


def flavor_bars(repositories_per_flavor: Mapping[str, int], *, repositories: int) -> Figure:
    """Repositories switching autolog on, per flavor (one repository may count for several)."""
    title = CHART_TITLES[Chart.autolog_flavors]
    if not repositories_per_flavor:
        return _empty(_figure(8.0, 3.0), title, "no repository switches autolog on")
    figure = _figure(8.0, max(3.0, 0.32 * len(repositories_per_flavor) + 1.4))
    ordered = sorted(repositories_per_flavor.items(), key=lambda item: (-item[1], item[0]))
    axes = figure.add_subplot()
    positions = range(len(ordered))
    bars = axes.barh(positions, [count for _, count in ordered], color=BAR_COLOUR, height=0.6)
    axes.set_yticks(list(positions), labels=[name for name, _ in ordered])
    axes.set_xlim(0, max(count for _, count in ordered) * 1.15)
    axes.invert_yaxis()
    axes.bar_label(bars, padding=3, fontsize=8)
    axes.set_xlabel(f"repositories (of n = {repositories})")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return figure


def bucket_label(low: int, high: int | None) -> str:
    if high is None:
        return f">{low - 1}"
    return str(low) if low == high else f"{low}-{high}"


def findings_buckets(findings_per_repository: Iterable[int]) -> dict[str, int]:
    """Repositories per bucket of finding counts, every bucket present (zeros included)."""
    counts = dict.fromkeys((bucket_label(low, high) for low, high in FINDINGS_BUCKETS), 0)
    for findings in findings_per_repository:
        for low, high in FINDINGS_BUCKETS:
            if findings >= low and (high is None or findings <= high):
                counts[bucket_label(low, high)] += 1
                break
    return counts


def findings_histogram(findings_per_repository: Sequence[int]) -> Figure:
    title = CHART_TITLES[Chart.findings_per_repository]
    figure = _figure(8.0, 4.0)
    if not findings_per_repository:
        return _empty(figure, title, "no repositories mined yet")
    counts = findings_buckets(findings_per_repository)
    axes = figure.add_subplot()
    bars = axes.bar(range(len(counts)), list(counts.values()), color=BAR_COLOUR, width=0.85)
    axes.set_xticks(range(len(counts)), labels=list(counts), rotation=0, fontsize=9)
    axes.bar_label(bars, labels=[str(v) if v else "" for v in counts.values()], padding=2, fontsize=8)
    axes.set_xlabel("MLflow calls found in the repository's latest successful run")
    axes.set_ylabel("repositories")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_title(
        f"{title} (n = {len(findings_per_repository)}, "
        f"median {statistics.median(findings_per_repository):g}, "
        f"max {max(findings_per_repository)})"
    )
    axes.grid(axis="y", alpha=0.3)
    return figure


def trend_line(trend: Sequence[Mapping[str, Any]]) -> Figure:
    """The headline share per crawl with its 95 % interval as a band."""
    title = CHART_TITLES[Chart.trend]
    figure = _figure(13.0, 4.0)
    points = [row for row in trend if row.get("n")]
    if not points:
        return _empty(figure, title, "no crawl with mined repositories yet")
    axes = figure.add_subplot()
    positions = list(range(len(points)))
    shares = [100 * float(row["share"]) for row in points]
    lows = [100 * float(row["ci95"][0]) for row in points]
    highs = [100 * float(row["ci95"][1]) for row in points]
    axes.fill_between(
        positions, lows, highs, color=BAND_COLOUR, alpha=0.45, label="95 % CI", step=None if len(points) > 1 else "mid"
    )
    axes.errorbar(
        positions,
        shares,
        yerr=[[s - lo for s, lo in zip(shares, lows)], [hi - s for s, hi in zip(shares, highs)]],
        fmt="o-",
        color=USED_COLOUR,
        capsize=4,
        label="headline share",
    )
    axes.set_xticks(positions, labels=[_crawl_label(row) for row in points], fontsize=8)
    axes.set_ylim(0, 100)
    axes.set_ylabel("% of repositories")
    axes.set_xlabel("crawl")
    for x, row, share in zip(positions, points, shares):
        axes.annotate(
            f"{row['k']}/{row['n']}", (x, share), textcoords="offset points", xytext=(7, 4), ha="left", fontsize=8
        )
    if len(points) == 1:
        axes.set_xlim(-1, 1)
    else:
        axes.margins(x=0.05)
    axes.legend(loc="lower right", fontsize=8)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return figure


def _crawl_label(row: Mapping[str, Any]) -> str:
    crawl = row.get("crawl_id", row.get("id"))
    when = row.get("started_at") or row.get("finished_at")
    day = str(when)[:10] if when else ""
    return f"#{crawl}\n{day}" if day else f"#{crawl}"


# --------------------------------------------------------------------- numbers from the db


def autolog_flavor_counts(finding_rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Repositories per autolog flavor from autolog findings, counting calls that switch it on.

    A flavor-less `mlflow.autolog()` counts under "mlflow.autolog"; a repository calling
    several flavors counts once for each.
    """
    seen = {(row["repository"], row.get("flavor") or GENERIC_AUTOLOG) for row in finding_rows if not row["disabling"]}
    return dict(Counter(flavor for _repository, flavor in seen))


def render_charts(
    *,
    session: Session,
    rules: Rules,
    filters: Filters | None = None,
    charts: Iterable[Chart] = tuple(Chart),
    stats: Mapping[str, Any] | None = None,
) -> dict[Chart, bytes]:
    """PNG bytes of each chart asked for; each number is read once, and only when needed."""
    from miner.present.findings import finding_rows
    from miner.present.repositories import repository_rows
    from miner.present.stats import compute_stats
    from miner.present.trend import crawl_trend

    wanted = list(dict.fromkeys(Chart(chart) for chart in charts))
    needs_stats = {Chart.headline, Chart.apis, Chart.categories, Chart.autolog_flavors}
    if stats is None and needs_stats & set(wanted):
        stats = compute_stats(session=session, rules=rules, filters=filters)
    pngs: dict[Chart, bytes] = {}
    for chart in wanted:
        if chart is Chart.headline:
            figure = headline_pie(stats["headline"], stats["repositories"])
        elif chart is Chart.apis:
            figure = share_bars(
                stats["apis"], title=CHART_TITLES[chart], repositories=stats["repositories"], vertical=True
            )
        elif chart is Chart.categories:
            figure = share_bars(stats["categories"], title=CHART_TITLES[chart], repositories=stats["repositories"])
        elif chart is Chart.autolog_flavors:
            rows = [
                row
                for api in rules.apis_of(Category.autolog)
                for row in finding_rows(session=session, api=api, filters=filters)
            ]
            figure = flavor_bars(autolog_flavor_counts(rows), repositories=stats["repositories"])
        elif chart is Chart.findings_per_repository:
            rows = repository_rows(session=session, rules=rules, filters=filters)
            figure = findings_histogram([int(row["findings"]) for row in rows])
        else:
            figure = trend_line(crawl_trend(session=session, rules=rules))
        pngs[chart] = png_bytes(figure)
    return pngs
