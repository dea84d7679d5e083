"""How every statistic spells its numbers: a share of repositories, its 95 % Wilson interval, and
times in ISO 8601; kept apart so the summary, the trend and the row queries agree on them."""

from __future__ import annotations

import math
from datetime import datetime

Z_95 = 1.959964  # two-sided 95 % normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a share: sensible for small samples and shares near 0 or 1."""
    if trials <= 0:
        return (0.0, 0.0)
    share = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (share + z2 / (2 * trials)) / denominator
    half_width = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half_width), min(1.0, centre + half_width))


def share(repositories: int, total: int) -> float:
    """The share of `total`; 0 for an empty population rather than a division error."""
    return repositories / total if total else 0.0


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 text, None stays None (JSON has no datetime)."""
    return value.isoformat() if value is not None else None
