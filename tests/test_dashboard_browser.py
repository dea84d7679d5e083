"""The dashboard end to end: `miner serve` as a real process, Debian's chromium as the browser.

No browser is downloaded: scripts/services.sh installs the `chromium` package when it is
missing, and this test fails (it does not skip) without it. The screenshot goes to
test-artifacts/dashboard.png in the repository root for a person to look at.
"""

from __future__ import annotations

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
from pathlib import Path

import matplotlib.image
import pytest
from usage_corpus import HEADLINE, N, seed

from schema.db import make_engine, open_session, upgrade

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW = (1280, 2000)
SERVER_START_S = 60
BROWSER_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fetch(url: str, timeout_s: float = 30) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`miner serve` on a seeded SQLite database, on a free loopback port."""
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'miner.db'}"
    upgrade(url)
    with open_session(url) as session:
        seed(session)
    make_engine(url).dispose()

    port = free_port()
    env = {**os.environ, "MINER_DATABASE_URL": url, "MINER_CONFIG": str(folder / "absent.yaml")}
    log = (folder / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "miner.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"miner serve exited with {process.returncode}: "
                            f"{(folder / 'serve.log').read_text()}")
            try:
                if fetch(base + "/api/stats", timeout_s=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"miner serve did not answer within {SERVER_START_S} s: "
                            f"{(folder / 'serve.log').read_text()}")
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
        pytest.fail("Debian's chromium is not installed (scripts/services.sh installs it: "
                    "apt-get install -y chromium)", pytrace=False)
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
        f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S,
                          check=False, env={**os.environ, "HOME": str(profile)})


def test_dashboard_in_headless_chromium(server: str, chromium: str, tmp_path: Path) -> None:
    # 1. the DOM after scripts ran and every chart image settled
    dump = run_chromium(chromium, tmp_path / "profile-dom", "--virtual-time-budget=10000",
                        "--dump-dom", server + "/")
    assert dump.returncode == 0, dump.stderr[-2000:]
    dom = dump.stdout
    assert re.search(r'<body[^>]*data-charts-loaded="true"', dom), dom[:3000]
    share = re.search(r'id="headline-share">([^<]+)<', dom)
    assert share and share.group(1) == f"{100 * HEADLINE / N:.1f} %"      # 71.4 %, from the database
    assert f"n = {N}" in dom
    sources = re.findall(r'<img class="chart" id="chart-\w+" alt="[^"]+" src="([^"]+)"', dom)
    assert len(sources) == 6
    for source in sources:
        status, content_type, body = fetch(server + source)
        assert (status, content_type) == (200, "image/png") and body.startswith(PNG_SIGNATURE)

    # 2. the screenshot, for people
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    shot = run_chromium(chromium, tmp_path / "profile-shot", "--virtual-time-budget=10000",
                        f"--screenshot={screenshot}", server + "/")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    # the charts' blue is on the page: the images were painted, not left as broken icons
    blue = (abs(pixels[..., 0] - 0x2B / 255) < 0.03) & (abs(pixels[..., 1] - 0x6C / 255) < 0.03) \
        & (abs(pixels[..., 2] - 0xB0 / 255) < 0.03)
    assert blue.mean() > 0.02, f"only {blue.mean():.4f} of the screenshot is chart blue"


def test_dashboard_filters_in_the_browser(server: str, chromium: str, tmp_path: Path) -> None:
    dump = run_chromium(chromium, tmp_path / "profile", "--virtual-time-budget=10000",
                        "--dump-dom", server + "/?exclude_forks=true")
    assert dump.returncode == 0, dump.stderr[-2000:]
    assert re.search(r'<body[^>]*data-charts-loaded="true"', dump.stdout)
    share = re.search(r'id="headline-share">([^<]+)<', dump.stdout)
    assert share and share.group(1) == f"{100 * (HEADLINE - 1) / (N - 1):.1f} %"   # no acme/client
    assert 'src="/charts/apis.png?exclude_forks=true"' in dump.stdout
