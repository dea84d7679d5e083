"""The dashboard end to end: `miner serve` as a real process, Debian's chromium as the browser.

No browser is downloaded: scripts/services.sh installs the `chromium` package when it is
missing, and these tests fail (they do not skip) without it. The server holds the corpus of
usage_corpus.py plus one repository mined from a real git repository, and its `web_url` is a
local stand-in for github.com that records what it is asked for, so following a finding's link
stays on loopback and proves where the link led. Screenshots go to test-artifacts/ in the
repository root for a person to look at: dashboard.png, repositories.png, repository.png,
finding.png and report.png.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import matplotlib.image
import pytest
from browser import Browser
from gitrepos import lines, make_repo, notebook_v4
from usage_corpus import HEADLINE, RULES, N, mined, seed

from miner.core.domain import FileKind, FileResult, FileStatus
from miner.present.report import write_report
from schema.db import make_engine, open_session, upgrade
from schema.repositories import upsert_repository
from schema.runs import save_run

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW = (1280, 2000)
NARROW_WINDOW = (1300, 900)  # the width at which the report used to scroll sideways
SERVER_START_S = 60
BROWSER_TIMEOUT_S = 120

# One repository mined for real, its paths needing quoting in a URL (a space, '#', unicode).
LAB = "lab/notebooks"
LAB_SCRIPT = "src/train model #1.py"
LAB_NOTEBOOK = "notebooks/expériences.ipynb"
LAB_FILES = {
    LAB_SCRIPT: "import mlflow\n\nmlflow.log_param('lr', 0.1)\n",
    LAB_NOTEBOOK: notebook_v4(
        [
            ("markdown", "# Expériences"),
            ("code", lines("import mlflow\n")),
            ("code", lines("accuracy = 0.9\nmlflow.log_metric('accuracy', accuracy)\n")),
        ]
    ),
}
SERVED_N, SERVED_HEADLINE = N + 1, HEADLINE + 1  # the corpus and lab/notebooks


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str, timeout_s: float = 30) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


class FakeGithub:
    """github.com's web pages as far as a click on a finding needs: any path answers 200 with a
    small page, and every requested path is kept (as sent: still percent-quoted)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                fake.paths.append(self.path)
                body = (
                    "<!doctype html><title>fake GitHub</title><h1 id='fake-github'>fake GitHub"
                    f"</h1><p>asked for <code id='requested'>{html.escape(self.path)}</code>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return  # the test reads `paths`, not a log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def github_web() -> Iterator[FakeGithub]:
    fake = FakeGithub()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(scope="module")
def lab_sha(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    built = make_repo(tmp_path_factory.mktemp("lab") / "notebooks", LAB_FILES)
    return built.path, built.sha


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, github_web: FakeGithub, lab_sha: tuple[Path, str]
) -> Iterator[str]:
    """`miner serve` on a free loopback port, over the seeded corpus and `miner mine` of a real
    git repository stored as lab/notebooks; GitHub links point at `github_web`."""
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'miner.db'}"
    upgrade(url)
    with open_session(url) as session:
        seed(session)
    make_engine(url).dispose()

    port = free_port()
    env = {
        **os.environ,
        "MINER_DATABASE_URL": url,
        "MINER_CONFIG": str(folder / "absent.yaml"),
        "MINER_GITHUB__WEB_URL": github_web.url,
        "MINER_WORKERS": "1",
    }
    mine = subprocess.run(
        [sys.executable, "-m", "miner.cli", "mine", str(lab_sha[0]), "--name", LAB],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert mine.returncode == 0, mine.stdout + mine.stderr
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "miner.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"miner serve exited with {process.returncode}: {(folder / 'serve.log').read_text()}")
            try:
                if fetch(base + "/api/stats", timeout_s=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"miner serve did not answer within {SERVER_START_S} s: {(folder / 'serve.log').read_text()}"
                )
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is not installed (scripts/services.sh installs it: apt-get install -y chromium)",
            pytrace=False,
        )
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        *args,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
        env={**os.environ, "HOME": str(profile)},
    )


def test_dashboard_in_headless_chromium(server: str, chromium: str, tmp_path: Path) -> None:
    # 1. the DOM after scripts ran and every chart image settled
    dump = run_chromium(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000", "--dump-dom", server + "/")
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = dump.stdout
    assert re.search(r'<body[^>]*data-charts-loaded="true"', dom), dom[:3000]
    share = re.search(r'id="headline-share">([^<]+)<', dom)
    assert share and share.group(1) == f"{100 * SERVED_HEADLINE / SERVED_N:.1f} %"  # 75.0 %
    assert f"n = {SERVED_N}" in dom
    sources = re.findall(r'<img class="chart" id="chart-\w+" alt="[^"]+" src="([^"]+)"', dom)
    assert len(sources) == 6
    for source in sources:
        status, content_type, body = fetch(server + source)
        assert (status, content_type) == (200, "image/png") and body.startswith(PNG_SIGNATURE)

    # 2. the screenshot, for people
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    shot = run_chromium(
        chromium, tmp_path / "profile-shot", "--virtual-time-budget=10000", f"--screenshot={screenshot}", server + "/"
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # the charts' blue is on the page: the images were painted, not left as broken icons
    blue = (
        (abs(pixels[..., 0] - 0x2B / 255) < 0.03)
        & (abs(pixels[..., 1] - 0x6C / 255) < 0.03)
        & (abs(pixels[..., 2] - 0xB0 / 255) < 0.03)
    )
    assert blue.mean() > 0.02, f"only {blue.mean():.4f} of the screenshot is chart blue"


def test_dashboard_filters_in_the_browser(server: str, chromium: str, tmp_path: Path) -> None:
    dump = run_chromium(
        chromium, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", server + "/?exclude_forks=true"
    )
    assert dump.returncode == 0, dump.stderr[-2000:]
    assert re.search(r'<body[^>]*data-charts-loaded="true"', dump.stdout)
    share = re.search(r'id="headline-share">([^<]+)<', dump.stdout)
    assert share and share.group(1) == f"{100 * (SERVED_HEADLINE - 1) / (SERVED_N - 1):.1f} %"  # no acme/client
    assert 'src="/charts/apis.png?exclude_forks=true"' in dump.stdout


# ------------------------------------------------------------------ clicking through to evidence


def assert_fits(browser: Browser, what: str) -> None:
    """Nothing pushes the page wider than the window (a wide table scrolls in its own box)."""
    scroll_width, window_width = browser.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert scroll_width <= window_width, f"{what} scrolls sideways: {scroll_width} > {window_width} px"


def links(browser: Browser, selector: str) -> list[list[str]]:
    """(href as written, text) of every link matching `selector`."""
    return browser.evaluate(
        f"[...document.querySelectorAll({selector!r})].map(a => [a.getAttribute('href'), a.textContent])"
    )


def test_click_from_the_dashboard_to_a_finding_on_github(
    server: str, chromium: str, github_web: FakeGithub, lab_sha: tuple[Path, str], tmp_path: Path
) -> None:
    sha = lab_sha[1]
    script_url = f"{github_web.url}/lab/notebooks/blob/{sha}/src/train%20model%20%231.py#L3"
    notebook_url = f"{github_web.url}/lab/notebooks/blob/{sha}/notebooks/exp%C3%A9riences.ipynb"
    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(chromium, tmp_path / "profile", NARROW_WINDOW) as browser:
        # the dashboard -> the repositories page
        browser.goto(server + "/")
        browser.click("#nav-repositories")
        assert browser.url == server + "/repositories"
        names = [text for _, text in links(browser, "#repositories a.repository-link")]
        assert len(names) == SERVED_N and names == sorted(names) and LAB in names
        assert [text for _, text in links(browser, "#unmined a.repository-link")] == ["acme/broken"]
        assert_fits(browser, "the repositories page")
        browser.screenshot(ARTIFACTS / "repositories.png")

        # sorted by findings on the server, most first; the repository link is still there
        browser.click("#sort-findings")
        assert browser.url == server + "/repositories?sort=findings"
        names = [text for _, text in links(browser, "#repositories a.repository-link")]
        assert names[:2] == ["acme/busy", "acme/sklearn"]

        # -> the repository's page: its findings by file, each linked to its line on "GitHub"
        browser.click('a.repository-link[href="/repositories/lab/notebooks"]')
        assert browser.url == server + "/repositories/lab/notebooks"
        assert browser.evaluate("document.getElementById('repository-name').textContent") == LAB
        assert links(browser, "a.finding-link") == [[notebook_url, "cell 2, line 2"], [script_url, "line 3"]]
        assert [text for _, text in links(browser, "a.file-link")] == [LAB_NOTEBOOK, LAB_SCRIPT]
        assert_fits(browser, "the repository page")
        browser.screenshot(ARTIFACTS / "repository.png")

        # -> the finding's link: the browser lands on the line, the server was asked for the file
        browser.click(f'a.finding-link[href="{script_url}"]')
        assert browser.url == script_url
        assert f"/lab/notebooks/blob/{sha}/src/train%20model%20%231.py" in github_web.paths
        assert browser.evaluate("document.getElementById('fake-github').textContent") == "fake GitHub"
        browser.screenshot(ARTIFACTS / "finding.png", full_page=False)

        # the notebook's link leads to the notebook file
        browser.goto(server + "/repositories/lab/notebooks")
        browser.click(f'a.finding-link[href="{notebook_url}"]')
        assert browser.url == notebook_url
        assert f"/lab/notebooks/blob/{sha}/notebooks/exp%C3%A9riences.ipynb" in github_web.paths

        # the same data in the API, one click from the page
        browser.goto(server + "/repositories/lab/notebooks")
        browser.click("#api-link")
        assert browser.url == server + "/api/repositories/lab/notebooks"
        detail = browser.evaluate("JSON.parse(document.body.innerText)")
        assert detail["profile"]["commit"] == sha and detail["findings"]["count"] == 2
        assert [finding["url"] for finding in detail["findings"]["data"]] == [notebook_url, script_url]


# --------------------------------------------------------------------------------- the report


def test_report_fits_a_1300_px_window(chromium: str, tmp_path: Path) -> None:
    """Long repository names, notebook paths and commit hashes in the failures table used to
    make the report 1,475 px wide in a 1,300 px window."""
    url = f"sqlite:///{tmp_path / 'miner.db'}"
    upgrade(url)
    wide_name = "a-rather-long-organisation-name/an-even-longer-repository-name-for-experiments"
    wide_path = "notebooks/2023-experiments/hyperparameter_optimisation_with_optuna_and_mlflow_tracking_final_v2.ipynb"
    with open_session(url) as session:
        seed(session)
        repository = upsert_repository(
            session=session, full_name=wide_name, stars=3, clone_url=f"https://example.invalid/{wide_name}.git"
        )
        unparsable = FileResult(
            path=wide_path,
            kind=FileKind.ipynb,
            status=FileStatus.unparsable,
            error="Syntax Error @ 4:1. parser error: error at 3:5: expected one of !=, %, &, (, *",
        )
        save_run(
            session=session,
            repository=repository,
            result=mined(
                wide_name,
                "0123456789abcdef0123456789abcdef01234567",
                at=datetime(2026, 3, 2, tzinfo=UTC),
                extra_files=(unparsable,),
            ),
            crawl_id=None,
            rules_version=RULES.version,
            tool_version="test",
        )
        files = write_report(session=session, rules=RULES, out_dir=tmp_path / "report")
    make_engine(url).dispose()

    ARTIFACTS.mkdir(exist_ok=True)
    with Browser(chromium, tmp_path / "profile", NARROW_WINDOW) as browser:
        browser.goto(files.index.as_uri())
        assert browser.evaluate("document.body.innerText").count(wide_path[:20]) == 1
        assert_fits(browser, "the report")
        table = browser.evaluate("document.getElementById('failures').getBoundingClientRect().right")
        assert table <= NARROW_WINDOW[0]
        browser.screenshot(ARTIFACTS / "report.png")
