"""miner.acquire.github against a real HTTP server speaking GitHub's REST shapes (tests/github_fake.py).

Every test sends real requests through PyGithub to the fake. Only `miner.acquire.github.client.sleep`
and `miner.acquire.github.client.clock` are swapped: waits are recorded rather than slept, and the client's clock
either stands still for the test (so a faulted run slices exactly like a clean one) or is a
FakeClock shared with the server (so a spent quota really comes back after the wait).
"""

from __future__ import annotations

import logging
import math
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from github_fake import FakeClock, FakeGithub
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from miner.acquire.github import client as gh
from miner.acquire.github.errors import GithubNotFound, GithubRequestRejected, GithubUnavailable, TransientGithubError
from miner.acquire.github.queries import GITHUB_EPOCH
from miner.acquire.github.repositories import RepositoryMeta, branch_head
from miner.acquire.github.slices import SEARCH_RESULT_CAP
from miner.acquire.github.topics import Enumeration, enumerate_repositories

TOKEN = "ghp_S3cr3tT0kenValue0000000000000000000"
OTHER_TOKEN = "ghp_An0therT0kenValue111111111111111111"
TOPIC = "mlflow"
TOPIC_SIZE = 2600


class Recorder:
    """Stands in for time.sleep and collects on_progress messages."""

    def __init__(self) -> None:
        self.now = time.time()
        self.sleeps: list[float] = []
        self.messages: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def progress(self, message: str) -> None:
        self.messages.append(message)


@pytest.fixture(scope="module")
def topic_fake() -> Iterator[FakeGithub]:
    """2,600 repositories under one topic, growing 60 % a year since 2015, plus decoys."""
    with FakeGithub() as fake:
        fake.add_synthetic_repositories(
            TOPIC_SIZE, topics=[TOPIC, "machine-learning"], start=datetime(2015, 1, 1, tzinfo=UTC), growth_per_year=0.6
        )
        fake.add_synthetic_repositories(300, topics=["pytorch"], prefix="decoy", seed=1)
        yield fake


@pytest.fixture
def fake(topic_fake: FakeGithub) -> FakeGithub:
    topic_fake.reset()
    return topic_fake


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Record waits instead of sleeping, and hold the client's clock still for the test.

    A still clock makes the newest slice end at the same second in every run of a test, so a
    faulted run can be compared with a clean one slice for slice.
    """
    recorder = Recorder()
    monkeypatch.setattr(gh, "sleep", recorder.sleep)
    monkeypatch.setattr(gh, "clock", lambda: recorder.now)
    return recorder


def clean_run(fake: FakeGithub) -> Enumeration:
    result = enumerate_repositories(fake.github_settings(token=TOKEN), [TOPIC])
    fake.reset()
    return result


def expected_names(fake: FakeGithub, topic: str = TOPIC) -> set[str]:
    return {repository.full_name for repository in fake.repositories if topic in repository.topics}


# --- enumeration ---------------------------------------------------------------------------------


def test_topic_past_the_cap_is_enumerated_completely_once(fake: FakeGithub, recorder: Recorder) -> None:
    result = enumerate_repositories(fake.github_settings(token=TOKEN), [TOPIC], on_progress=recorder.progress)

    names = [repository.full_name for repository in result.repositories]
    assert len(names) == len(set(names)) == TOPIC_SIZE
    assert set(names) == expected_names(fake)
    assert result.query == f"topic:{TOPIC}"
    assert len(result.slices) >= 3
    assert all(query.startswith(f"topic:{TOPIC} created:") for query in result.slices)
    assert result.requests == fake.search_requests
    assert result.requests <= math.ceil(1.25 * math.ceil(TOPIC_SIZE / 100))
    assert recorder.sleeps == []
    assert any("cutting by creation date" in message for message in recorder.messages)


def test_slices_cover_the_range_without_gaps_or_overlaps(fake: FakeGithub, recorder: Recorder) -> None:
    result = clean_run(fake)
    bounds = []
    for query in result.slices:
        low, high = query.split("created:")[1].split("..")
        bounds.append((datetime.fromisoformat(low), datetime.fromisoformat(high)))
    assert bounds[0][0] == GITHUB_EPOCH
    assert bounds[-1][1] == datetime.fromtimestamp(int(gh.clock()), UTC)
    for (_, previous_high), (low, _) in zip(bounds, bounds[1:]):
        assert low - previous_high == timedelta(seconds=1)


def test_repository_fields_come_from_the_search_item(fake: FakeGithub) -> None:
    fake.add_repository(
        "Acme/Tracker",
        clone_url="file:///srv/git/tracker",
        created_at=datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC),
        pushed_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        topics=["tracking-only"],
        default_branch="trunk",
        size_kb=1234,
        stars=42,
        forks=7,
        archived=True,
        description="experiment tracking",
    )
    result = enumerate_repositories(fake.github_settings(), ["tracking-only"])

    assert result.repositories == [
        RepositoryMeta(
            full_name="Acme/Tracker",
            clone_url="file:///srv/git/tracker",
            default_branch="trunk",
            stars=42,
            forks=7,
            size_kb=1234,
            topics=("tracking-only",),
            description="experiment tracking",
            fork=False,
            archived=True,
            created_at=datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC),
            pushed_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            html_url="https://github.com/Acme/Tracker",
        )
    ]
    assert result.requests == 1


def test_extra_qualifiers_filter_the_search() -> None:
    with FakeGithub() as fake:
        base = datetime(2022, 6, 1, tzinfo=UTC)
        wanted = set()
        for index in range(60):
            language = "Python" if index % 2 else "Jupyter Notebook"
            stars = index % 10
            fork = index % 7 == 0
            fake.add_repository(
                f"owner/repo-{index}",
                topics=["mlops"],
                language=language,
                stars=stars,
                fork=fork,
                created_at=base + timedelta(days=index * 20),
            )
            if language == "Python" and stars >= 5 and not fork:
                wanted.add(f"owner/repo-{index}")
        settings = fake.github_settings()

        filtered = enumerate_repositories(settings, ["mlops"], extra_query="language:python stars:>=5")
        assert {repository.full_name for repository in filtered.repositories} == wanted
        assert filtered.query == "topic:mlops language:python stars:>=5"

        recent = enumerate_repositories(settings, ["mlops"], extra_query="created:>=2023-06-01 fork:true")
        cutoff = datetime(2023, 6, 1, tzinfo=UTC)
        assert {repository.full_name for repository in recent.repositories} == {
            f"owner/repo-{index}" for index in range(60) if base + timedelta(days=index * 20) >= cutoff
        }
        assert recent.slices[0].startswith("topic:mlops fork:true created:2023-06-01T00:00:00+00:00..")


def test_several_topics_are_merged_in_stable_order_without_duplicates() -> None:
    with FakeGithub() as fake:
        day = datetime(2023, 1, 1, tzinfo=UTC)
        fake.add_repository("a/only-a", topics=["alpha"], created_at=day, stars=3)
        fake.add_repository("a/both", topics=["alpha", "beta"], created_at=day, stars=2)
        fake.add_repository("b/only-b", topics=["beta"], created_at=day, stars=1)
        result = enumerate_repositories(fake.github_settings(), ["alpha", "beta"])

    assert [repository.full_name for repository in result.repositories] == ["a/only-a", "a/both", "b/only-b"]
    assert result.requests == 2
    assert result.query == "topic:alpha; topic:beta"


def test_limit_stops_paging_early(fake: FakeGithub) -> None:
    result = enumerate_repositories(fake.github_settings(), [TOPIC], limit=150)

    assert len(result.repositories) == 150
    assert len({repository.full_name for repository in result.repositories}) == 150
    assert result.requests <= 4  # the root probe, then at most one cut's probe and a page or two
    assert result.requests == fake.search_requests


def test_a_second_holding_more_than_the_cap_is_reported_not_looped_on(recorder: Recorder) -> None:
    with FakeGithub() as fake:
        crowded = datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
        for index in range(1100):
            fake.add_repository(f"bulk/repo-{index}", topics=["burst"], created_at=crowded)
        for index in range(300):
            later = crowded + timedelta(days=index + 1)
            fake.add_repository(f"spread/repo-{index}", topics=["burst"], created_at=later)
        result = enumerate_repositories(fake.github_settings(), ["burst"], on_progress=recorder.progress)

    names = {repository.full_name for repository in result.repositories}
    assert len(names) == len(result.repositories) == 1000 + 300
    assert {f"spread/repo-{index}" for index in range(300)} <= names
    assert any("in one second" in message and "1100" in message for message in recorder.messages)


@hypothesis_settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    clusters=st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2008, 1, 2), max_value=datetime(2024, 12, 31)),
            st.integers(min_value=0, max_value=600),
            st.sampled_from([0, 1, 60, 86400, 30 * 86400, 365 * 86400]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_any_spread_of_creation_dates_is_enumerated_completely(
    clusters: list[tuple[datetime, int, int]], shared_fake: FakeGithub
) -> None:
    """Clusters of up to 600 repositories spread over 0 s to a year: nothing lost, nothing twice."""
    created = {
        f"c{cluster}/r{index}": center.replace(tzinfo=UTC) + timedelta(seconds=(index * 7919) % (spread_s + 1))
        for cluster, (center, size, spread_s) in enumerate(clusters)
        for index in range(size)
    }
    assume(max(Counter(created.values()).values(), default=0) <= SEARCH_RESULT_CAP)  # else unreachable
    shared_fake.reset()
    shared_fake.clear_repositories()
    for name, moment in created.items():
        shared_fake.add_repository(name, topics=["prop"], created_at=moment)
    names = set(created)
    result = enumerate_repositories(shared_fake.github_settings(), ["prop"])

    found = [repository.full_name for repository in result.repositories]
    assert len(found) == len(set(found))
    assert set(found) == names
    assert result.requests == shared_fake.search_requests
    assert result.requests <= 1 + 2 * math.ceil(len(names) / 100) + 2 * len(result.slices)


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeGithub]:
    with FakeGithub() as fake:
        yield fake


# --- faults in the middle of pagination ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options", "expected_wait_s", "extra_requests"),
    [
        ("secondary_403", {"retry_after_s": 7}, 7.0, 1),
        ("secondary_429", {"retry_after_s": 3}, 3.0, 1),
        ("secondary_429", {}, gh.SECONDARY_LIMIT_WAIT_S, 1),
        ("server_error", {"times": 2}, None, 2),
        ("server_error", {"status": 503}, None, 1),
        ("drop", {}, None, 1),
    ],
    ids=["403-retry-after", "429-retry-after", "429-bare", "502-twice", "503", "dropped-connection"],
)
def test_faults_mid_pagination_give_the_same_result_as_a_clean_run(
    fake: FakeGithub,
    recorder: Recorder,
    kind: str,
    options: dict,
    expected_wait_s: float | None,
    extra_requests: int,
) -> None:
    clean = clean_run(fake)
    fake.fail_at(6, kind, **options)  # type: ignore[arg-type]
    result = enumerate_repositories(fake.github_settings(token=TOKEN), [TOPIC], on_progress=recorder.progress)

    assert [r.full_name for r in result.repositories] == [r.full_name for r in clean.repositories]
    assert result.slices == clean.slices
    assert result.requests == clean.requests + extra_requests == fake.search_requests
    assert len(recorder.sleeps) == extra_requests
    if expected_wait_s is not None:
        assert recorder.sleeps == [expected_wait_s]
        assert any(f"waiting {expected_wait_s:.0f} s" in message for message in recorder.messages)
    else:
        assert all(0 < wait <= 0.05 for wait in recorder.sleeps)  # jittered backoff within settings
        assert any("retry 1 of" in message for message in recorder.messages)


@pytest.mark.parametrize("status", [403, 429])
def test_primary_limit_waits_until_reset_then_continues(fake: FakeGithub, recorder: Recorder, status: int) -> None:
    clean = clean_run(fake)
    fake.fail_at(4, "primary", reset_in_s=12, status=status)
    result = enumerate_repositories(fake.github_settings(token=TOKEN), [TOPIC], on_progress=recorder.progress)

    assert [r.full_name for r in result.repositories] == [r.full_name for r in clean.repositories]
    assert result.requests == clean.requests + 1 == fake.search_requests
    limited = next(entry for entry in fake.log if entry.status == status)
    reset_s = int(limited.headers["X-RateLimit-Reset"])
    assert recorder.sleeps == [pytest.approx(reset_s - recorder.now + gh.RESET_MARGIN_S)]
    assert 12.0 <= recorder.sleeps[0] <= 12.0 + gh.RESET_MARGIN_S + (time.time() - recorder.now) + 1
    assert any(message.startswith("rate limited, waiting 1") for message in recorder.messages)


def test_spent_quota_is_waited_out_before_the_next_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """X-RateLimit-Remaining: 0 on a success means wait for the reset, not spend a request on a 403."""
    clock = FakeClock()
    monkeypatch.setattr(gh, "clock", clock)
    monkeypatch.setattr(gh, "sleep", clock.sleep)
    with FakeGithub(clock=clock, search_limit=10) as fake:
        fake.add_synthetic_repositories(2500, topics=["quota"], start=datetime(2016, 1, 1, tzinfo=UTC))
        result = enumerate_repositories(fake.github_settings(token=TOKEN), ["quota"])
        statuses = {entry.status for entry in fake.log}

    assert len(result.repositories) == 2500
    assert statuses == {200}
    assert len(clock.sleeps) == (result.requests - 1) // 10
    # The fake's clock stands still between sleeps: each wait is the whole 60 s window, rounded
    # up to the whole second of X-RateLimit-Reset, plus the margin.
    assert all(60 < wait <= 60 + 1 + gh.RESET_MARGIN_S for wait in clock.sleeps)


def test_exhausted_token_rotates_to_the_next_without_waiting(fake: FakeGithub, recorder: Recorder) -> None:
    fake.exhaust_token(TOKEN, "search", reset_in_s=600)
    settings = fake.github_settings(token=TOKEN, tokens=[OTHER_TOKEN])
    result = enumerate_repositories(settings, [TOPIC], limit=300, on_progress=recorder.progress)

    assert len(result.repositories) == 300
    assert fake.authorizations[0] == f"token {TOKEN}"
    assert set(fake.authorizations[1:]) == {f"token {OTHER_TOKEN}"}
    assert recorder.sleeps == []
    assert "token 1 of 2 exhausted; using token 2" in recorder.messages


def test_when_every_token_is_spent_the_earliest_reset_is_awaited(fake: FakeGithub, recorder: Recorder) -> None:
    fake.exhaust_token(TOKEN, "search", reset_in_s=300)
    fake.exhaust_token(OTHER_TOKEN, "search", reset_in_s=30)
    settings = fake.github_settings(token=TOKEN, tokens=[OTHER_TOKEN])
    with pytest.raises(GithubUnavailable):
        # The fake's clock does not move, so the quota never comes back; the wait is what we check.
        enumerate_repositories(settings, [TOPIC], limit=100, on_progress=recorder.progress)

    assert 29.0 <= recorder.sleeps[0] <= 32.0
    assert fake.authorizations[:2] == [f"token {TOKEN}", f"token {OTHER_TOKEN}"]
    assert fake.authorizations[2] == f"token {OTHER_TOKEN}"  # the token whose reset came first


def test_persistent_server_errors_raise_github_unavailable(fake: FakeGithub, recorder: Recorder) -> None:
    fake.fail_at(1, "server_error", times=100)
    with pytest.raises(GithubUnavailable, match="unavailable after 3 retries \\(HTTP 502\\)") as caught:
        enumerate_repositories(fake.github_settings(max_retries=3), [TOPIC])

    assert isinstance(caught.value, TransientGithubError)
    assert fake.search_requests == 4
    assert len(recorder.sleeps) == 3
    assert all(0 < wait <= 0.05 for wait in recorder.sleeps)


def test_backoff_grows_exponentially_with_jitter_and_is_capped(fake: FakeGithub, recorder: Recorder) -> None:
    fake.fail_at(1, "drop", times=5)
    settings = fake.github_settings(max_retries=6, backoff_base_s=1.0, backoff_max_s=5.0)
    result = enumerate_repositories(settings, [TOPIC], limit=10)

    assert len(result.repositories) == 10
    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(recorder.sleeps) == 5
    for wait, ceiling in zip(recorder.sleeps, ceilings):
        assert ceiling / 2 <= wait <= ceiling


def test_a_stalled_answer_times_out_and_is_retried(fake: FakeGithub, recorder: Recorder) -> None:
    settings = fake.github_settings(timeout_s=1)
    clean = enumerate_repositories(settings, [TOPIC], limit=10)
    fake.reset()
    fake.fail_at(1, "stall", stall_s=1.5)
    result = enumerate_repositories(settings, [TOPIC], limit=10, on_progress=recorder.progress)

    assert result.repositories == clean.repositories
    assert result.requests == clean.requests + 1 == fake.search_requests
    assert any("ReadTimeout; retry 1 of" in message for message in recorder.messages)


def test_bad_credentials_are_rejected_not_retried(recorder: Recorder) -> None:
    with FakeGithub(valid_tokens={OTHER_TOKEN}) as fake:
        fake.add_repository("a/b", topics=["x"])
        with pytest.raises(GithubRequestRejected, match="HTTP 401: Bad credentials"):
            enumerate_repositories(fake.github_settings(token=TOKEN), ["x"])
        assert fake.search_requests == 1
    assert recorder.sleeps == []


# --- branch heads --------------------------------------------------------------------------------


def test_branch_head_reads_the_branch_sha() -> None:
    with FakeGithub() as fake:
        fake.add_repository(
            "acme/tracker",
            default_branch="main",
            head_sha="1" * 40,
            branches={"feature/logging": "2" * 40},
        )
        settings = fake.github_settings(token=TOKEN)
        assert branch_head(settings, "acme/tracker", "main") == "1" * 40
        assert branch_head(settings, "Acme/Tracker", "feature/logging") == "2" * 40
        assert [entry.path for entry in fake.log] == [
            "/repos/acme/tracker/branches/main",
            "/repos/Acme/Tracker/branches/feature/logging",
        ]


def test_branch_head_retries_transient_faults(recorder: Recorder) -> None:
    with FakeGithub() as fake:
        fake.add_repository("acme/tracker", head_sha="3" * 40)
        fake.fail_at(1, "server_error", path="/repos/")
        fake.fail_at(2, "secondary_403", path="/repos/", retry_after_s=2)
        assert branch_head(fake.github_settings(), "acme/tracker", "main") == "3" * 40
    assert len(recorder.sleeps) == 2 and recorder.sleeps[1] == 2.0


@pytest.mark.parametrize(("full_name", "branch"), [("acme/missing", "main"), ("acme/tracker", "no-such-branch")])
def test_missing_repository_or_branch_raises_github_not_found(full_name: str, branch: str) -> None:
    with FakeGithub() as fake:
        fake.add_repository("acme/tracker")
        with pytest.raises(GithubNotFound, match="not found") as caught:
            branch_head(fake.github_settings(token=TOKEN), full_name, branch)
        assert fake.log[-1].status == 404
    assert not isinstance(caught.value, TransientGithubError)


# --- secrets -------------------------------------------------------------------------------------


def test_the_token_never_reaches_logs_messages_or_exceptions(
    fake: FakeGithub, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request at DEBUG
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub's own logger sits at INFO by default
    texts: list[str] = []
    settings = fake.github_settings(token=TOKEN, tokens=[OTHER_TOKEN], max_retries=2)

    fake.fail_at(2, "secondary_403", retry_after_s=1)
    fake.fail_at(3, "server_error")
    fake.fail_at(4, "drop")
    fake.exhaust_token(TOKEN, "search", reset_in_s=5)
    result = enumerate_repositories(settings, [TOPIC], limit=500, on_progress=recorder.progress)
    texts += [repr(result), repr(settings), str(settings), repr(settings.model_dump())]

    fake.reset()
    fake.fail_at(1, "server_error", times=10)
    failures: list[BaseException] = []
    for attempt in (
        lambda: enumerate_repositories(settings, [TOPIC], on_progress=recorder.progress),
        lambda: branch_head(settings, "acme/nope", "main"),
    ):
        try:
            attempt()
        except Exception as exc:  # noqa: BLE001 - every failure's text is inspected below
            failures.append(exc)
    with FakeGithub(valid_tokens={"someone-else"}) as strict:
        try:
            enumerate_repositories(strict.github_settings(token=TOKEN), ["x"])
        except GithubRequestRejected as exc:
            failures.append(exc)

    assert [type(exc) for exc in failures] == [GithubUnavailable, GithubNotFound, GithubRequestRejected]
    for exc in failures:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += recorder.messages
    texts.append(caplog.text)
    assert "'Authorization': 'token (oauth token removed)'" in caplog.text  # request headers were logged
    for text in texts:
        assert TOKEN not in text
        assert OTHER_TOKEN not in text
