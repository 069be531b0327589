"""End to end in headless Chromium: candidates, two keyframes, a rendered movie and its sheet in
the page.

Needs Debian's chromium at /usr/bin/chromium (scripts/install-browser.sh installs it).
"""

import socket
from pathlib import Path

import pytest

from latentmorph.cli import main
from latentmorph.ui.app import launch

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "demo"
STEP_MS = 30_000
RENDER_MS = 60_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="/usr/bin/chromium is missing; install it with scripts/install-browser.sh",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url():
    port = _free_port()
    app = launch(model=MODEL, port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _candidate_sources(page) -> list[str]:
    return page.eval_on_selector_all("#candidates img", "images => images.map(i => i.src)")


def _add_keyframe(page, prompt: str, count: int) -> None:
    """Generates candidates for `prompt` and adds the first one as keyframe number `count`."""
    before = _candidate_sources(page)
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#generate").click()
    page.wait_for_function(
        """before => {
            const now = [...document.querySelectorAll('#candidates img')].map(i => i.src);
            return now.length === 4 && now.every(src => !before.includes(src));
        }""",
        arg=before,
        timeout=STEP_MS,
    )
    page.locator("#add-keyframe").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#keyframes img').length === n", arg=count, timeout=STEP_MS
    )


def test_pick_two_keyframes_and_play_the_movie(url, browser):
    page = browser.new_page()
    outside = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((url, "data:", "blob:")) else outside.append(r.url),
    )
    page.goto(url)
    page.locator("#seconds input").fill("1")
    _add_keyframe(page, "a red circle", 1)
    _add_keyframe(page, "a blue square", 2)
    captions = page.locator("#keyframes").inner_text()
    assert "1. a red circle" in captions and "2. a blue square" in captions

    page.locator("#render-movie").click()
    video = page.locator("#result video")
    video.wait_for(state="attached", timeout=RENDER_MS)
    source = video.get_attribute("src")
    assert source and source.startswith(url) and source.endswith(".mp4")
    assert page.evaluate("v => v.canPlayType('video/mp4')", video.element_handle()) != ""
    page.wait_for_function(
        "() => document.querySelector('#result video').readyState >= 1", timeout=STEP_MS
    )
    duration = page.evaluate("() => document.querySelector('#result video').duration")
    assert duration == pytest.approx(1.0, abs=0.2)
    assert "Done:" in page.locator("#render-status").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#sheet img')?.naturalWidth >= 480", timeout=STEP_MS
    )
    assert outside == []


def test_a_command_line_project_fills_the_keyframe_gallery(url, browser, tmp_path):
    argv = ["transition", "dawn", "dusk", "-o", str(tmp_path / "cli.mp4"), "--model", MODEL]
    assert main([*argv, "--quiet", "--duration", "1", "--fps", "4", "--branches", "2"]) == 0
    page = browser.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Session").click()
    page.locator("#project-upload input[type=file]").set_input_files(str(tmp_path / "cli.yaml"))
    page.wait_for_function(
        "() => document.querySelector('#project-upload').innerText.includes('.yaml')",
        timeout=STEP_MS,
    )
    page.locator("#load-project").click()
    page.wait_for_function(
        "() => document.querySelector('#session-status').innerText.includes('Loaded 2 keyframes')",
        timeout=STEP_MS,
    )
    page.get_by_role("tab", name="Keyframes").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#keyframes img').length === 2", timeout=STEP_MS
    )
    captions = page.locator("#keyframes").inner_text()
    assert "1. dawn" in captions and "2. dusk" in captions
