"""The `created:` search qualifier: written for each slice, and read from the user's extra query.

Search dates are whole seconds in UTC; a bare date as an upper bound means the day's last second.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

GITHUB_EPOCH = datetime(2008, 1, 1, tzinfo=UTC)
"""No repository was created before GitHub went live in 2008."""


def created_range(lo_s: int, hi_s: int) -> str:
    """A `created:` qualifier covering whole seconds lo..hi, both inclusive."""
    return f"created:{_format_timestamp(lo_s)}..{_format_timestamp(hi_s)}"


def _format_timestamp(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_CREATED = re.compile(r"(?:^|\s)created:(\S+)")


def split_created_qualifier(extra_query: str, now_s: int) -> tuple[str, tuple[int, int]]:
    """Remove a `created:` qualifier from the query and turn it into the range to slice."""
    start_s, end_s = int(GITHUB_EPOCH.timestamp()), now_s
    match = _CREATED.search(extra_query)
    if not match:
        return " ".join(extra_query.split()), (start_s, end_s)
    rest = " ".join((extra_query[: match.start()] + " " + extra_query[match.end() :]).split())
    value = match.group(1)
    if ".." in value:
        low, high = value.split("..", 1)
        if low != "*":
            start_s = max(start_s, _bound_s(low, "start"))
        if high != "*":
            end_s = min(end_s, _bound_s(high, "end"))
    elif value.startswith(">="):
        start_s = max(start_s, _bound_s(value[2:], "start"))
    elif value.startswith(">"):
        start_s = max(start_s, _bound_s(value[1:], "end") + 1)
    elif value.startswith("<="):
        end_s = min(end_s, _bound_s(value[2:], "end"))
    elif value.startswith("<"):
        end_s = min(end_s, _bound_s(value[1:], "start") - 1)
    else:
        start_s, end_s = max(start_s, _bound_s(value, "start")), min(end_s, _bound_s(value, "end"))
    return rest, (start_s, end_s)


def _bound_s(text: str, side: Literal["start", "end"]) -> int:
    """A date covers its whole day: as an upper bound it means the day's last second."""
    if "T" in text:
        return int(parse_timestamp(text).timestamp())
    day_start = int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())
    return day_start if side == "start" else day_start + 86399
