"""The page at ``/`` in a real browser: headless Chromium (Debian's package) driven over the DevTools protocol.

A person's path through the page: it loads (singers, map), a song is chosen in the file
input, the answer appears (singer, vote share, runners-up, evidence, similar singers, the
song on the timbre map), and a screenshot of it is not blank. Every request the page makes
goes to this server, and the browser reports no error (a Content-Security-Policy violation
would be one).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import time
from typing import Any

import httpx
import pytest

import singerid
from singerid.service import create_app
from singerid.service.server import serve_in_thread

websocket = pytest.importorskip("websocket", reason="websocket-client is a dev dependency: pip install -e '.[dev]'")

pytestmark = pytest.mark.usefixtures("one_torch_thread_module")

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-extensions", "--mute-audio", "--window-size=1200,1600",
                  "--remote-debugging-port=0")


def find_or_install_chromium() -> str:
    """Debian's chromium: found on PATH, else installed with apt-get when running as root, else skip."""
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    if os.geteuid() != 0:
        pytest.skip("headless Chromium is not installed and installing it needs root: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # a fresh machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(f"apt-get install chromium failed: {done.stderr[-2000:]}")
    return path


class DevTools:
    """A minimal DevTools-protocol client over one page target: commands, and the events seen meanwhile."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {expression}")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def base_url(ready_home):
    with singerid.open(ready_home.home) as identifier, serve_in_thread(create_app(identifier)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a fresh profile; yields a DevTools client on its page."""
    binary = find_or_install_chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert proc.poll() is None, f"chromium exited with {proc.returncode}"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port in 60 s"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Network", "Log"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def requested_urls(tools: DevTools) -> list[str]:
    return [e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"]


def browser_errors(tools: DevTools) -> list[str]:
    errors = [json.dumps(e["params"])[:300] for e in tools.events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e["params"]["entry"]["text"] for e in tools.events
               if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    return errors


def test_a_dropped_song_shows_its_singer_evidence_and_place_on_the_map(browser, base_url, ready_home, tmp_path):
    song = ready_home.songs("test")[0]
    expected = ready_home.singer_of(song)
    browser.call("Page.navigate", url=f"{base_url}/")
    browser.wait_for("document.readyState === 'complete' "
                     "&& document.querySelectorAll('#map .point.singer').length === 4")
    browser.wait_for("document.querySelector('#singer-pick').options.length === 4")
    assert browser.evaluate("document.querySelector('#status').textContent").startswith("4 singers")

    # every form control has a label, and the file input itself is reachable from the keyboard
    assert browser.evaluate("[...document.querySelectorAll('input, select')].every(e => e.labels.length > 0)")
    assert browser.evaluate("const s = document.getElementById('song'); s.focus(); document.activeElement === s")

    root = browser.call("DOM.getDocument")["root"]["nodeId"]
    node = browser.call("DOM.querySelector", nodeId=root, selector="#song")["nodeId"]
    browser.call("DOM.setFileInputFiles", files=[str(song)], nodeId=node)  # as if the person picked the file
    state = browser.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state")
    assert state == "done", browser.evaluate("document.querySelector('#error').textContent")

    text = browser.evaluate("document.querySelector('#answer').innerText")
    assert browser.evaluate("document.querySelector('#singer').textContent") == expected
    assert browser.evaluate("document.querySelector('#answer-song').textContent") == song.name
    assert "of blocks for " + expected in text
    rows = browser.evaluate("[...document.querySelectorAll('#evidence tbody tr')].map(r => r.innerText)")
    assert rows and all(expected in row and "~" in row for row in rows[:1])
    similar = browser.evaluate("[...document.querySelectorAll('#similar li')].map(li => li.textContent)")
    assert len(similar) == 4 and similar[0].startswith(expected + ": similarity")  # every singer; itself first
    browser.wait_for("document.querySelectorAll('#map .point.song').length === 1")
    assert song.name in browser.evaluate("document.querySelector('#map .point.song').textContent")
    assert browser.evaluate("document.querySelector('#map .point.chosen text').textContent") == expected

    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
    (tmp_path / "page.png").write_bytes(shot)
    assert_not_blank(shot)

    # similar singers for a singer picked from the list
    browser.evaluate("document.querySelector('#singer-pick').value = 'singer1';"
                     "document.querySelector('#similar-form button').click(); true")
    listed = browser.wait_for("[...document.querySelectorAll('#similar-singers li')].map(li => li.textContent)"
                              ".filter(t => t.includes('similarity'))")
    assert len(listed) == 3 and not any(t.startswith("singer1:") for t in listed)

    outside = [u for u in requested_urls(browser) if not u.startswith((base_url, "data:", "about:"))]
    assert outside == []
    assert browser_errors(browser) == []


def test_a_bad_file_shows_the_servers_one_line_error(browser, base_url, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n")
    browser.call("Page.navigate", url=f"{base_url}/")
    browser.wait_for("document.readyState === 'complete' "
                     "&& document.querySelector('#singer-pick').options.length === 4")
    root = browser.call("DOM.getDocument")["root"]["nodeId"]
    node = browser.call("DOM.querySelector", nodeId=root, selector="#song")["nodeId"]
    browser.call("DOM.setFileInputFiles", files=[str(bad)], nodeId=node)
    assert browser.wait_for("document.body.dataset.state === 'error' && document.body.dataset.state") == "error"
    assert browser.evaluate("document.querySelector('#error').textContent") == (
        "Could not identify notes.wav: notes.wav: not a readable audio file (unknown format or corrupt header)")
    assert browser.evaluate("document.querySelector('#error').getAttribute('role')") == "alert"


def assert_not_blank(png: bytes) -> None:
    """A real page: a sizeable image with many colours and contrast, not one flat colour."""
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.width >= 800 and image.height >= 600
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 10
