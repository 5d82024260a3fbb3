"""The HTML report in a real headless Chromium: it loads offline, without errors, and shows its results.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no extra package is needed.
"""

import contextlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import snakemake

CHROMIUM = Path("/usr/bin/chromium")
ALLOWED_SCHEMES = ("file:", "data:", "blob:", "about:")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


class DevTools:
    """A minimal DevTools-protocol client: send commands, keep every event for later checks."""

    def __init__(self, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def as_fd_3_and_4() -> None:  # runs in the child: Chromium expects the pipe on fds 3 and 4
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # a request that escapes the checks still goes nowhere
            f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [str(CHROMIUM), *flags],
            preexec_fn=as_fd_3_and_4,  # safe here: the test process starts no threads
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 20) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def evaluate(self, session: str, expression: str) -> object:
        """Run JavaScript in the page (awaiting a promise) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):  # it may be gone already
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def report(tiny_run) -> Path:
    """The report of the shared tiny run (tests/conftest.py), written beside it."""
    path = tiny_run / "report_browser.html"
    proc = snakemake(tiny_run, "--report", path.name)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def page(report, tmp_path_factory):
    """The report loaded in Chromium: (client, session id)."""
    client = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    try:
        target = client.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = client.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            client.send(f"{domain}.enable", session=session)
        client.send("Page.navigate", {"url": report.as_uri()}, session)
        client.wait_for("Page.loadEventFired")
        yield client, session
    finally:
        client.close()


def child_frames(client: DevTools, session: str) -> list[str]:
    """URLs of the frames the page has loaded inside it."""
    tree = client.send("Page.getFrameTree", session=session)["frameTree"]
    return [child["frame"]["url"] for child in tree.get("childFrames", [])]


CHECK_RESULTS = """
(async () => {
  // every image result must decode to a non-empty bitmap
  const images = Object.entries(results).filter(([p, r]) => r.mime_type.startsWith("image/"));
  const sizes = await Promise.all(images.map(([p, r]) => new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve([p, img.naturalWidth, img.naturalHeight]);
    img.onerror = () => resolve([p, 0, 0]);
    img.src = r.data_uri;
  })));
  return sizes;
})()
"""

SHOW_AND_MEASURE = """
(async (path) => {
  const uri = results[path].data_uri;
  app.setView({content: "img", contentPath: uri, resultPath: path});
  for (let i = 0; i < 100; i++) {
    const img = Array.from(document.querySelectorAll("#app img")).find((el) => el.getAttribute("src") === uri);
    if (img && img.complete && img.naturalWidth > 0) {
      const box = img.getBoundingClientRect();
      return [img.naturalWidth, box.width, box.height];
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return null;
})
"""


def test_report_loads_offline_without_errors_and_renders_results(page, tiny_run):
    client, session = page
    app_ready = client.evaluate(
        session,
        """(async () => {
             for (let i = 0; i < 100 && !document.querySelector('#app nav, #app ul li'); i++)
               await new Promise((r) => setTimeout(r, 50));
             return {
               loading: getComputedStyle(document.querySelector('#loading-screen')).display,
               menu: Array.from(document.querySelectorAll('#app ul li')).map((li) => li.textContent.trim()),
               description: (document.querySelector('#app .prose') || {}).innerText || '',
               rulegraph: document.querySelectorAll('#app svg, #app canvas').length,
             };
           })()""",
    )
    assert app_ready["loading"] == "none"
    assert "Start with the summary" in app_ready["description"]
    assert app_ready["rulegraph"] > 0  # the vega rule graph drew itself

    # the config's structure: a summary category, then "dataset / model", then one subcategory per FIQA
    categories = client.evaluate(session, "categories")
    assert set(categories) == {"» Summary", "tiny / sface", "FIQA methods"}
    menu = [item for item in app_ready["menu"] if item in categories]
    assert menu[0] == "» Summary", app_ready["menu"]
    assert set(categories["tiny / sface"]) == {
        "» all FIQA",
        "» can these maps be trusted?",
        "serfiq",
        "brisque",
        "sharpness",
        "imported",
    }
    assert len(categories["tiny / sface"]["» can these maps be trusted?"]) == 2  # one CAM checked, two figures
    assert len(categories["tiny / sface"]["serfiq"]) == 2 * 5  # two CAMs x five figures
    labels = client.evaluate(session, "results['results/report/tiny/sface/gradcam/brisque/maps.png'].labels")
    assert labels == {
        "figure": "1 MAM / AM-V / D-AM-V maps",
        "CAM": "gradcam",
        "bins": "matched HIGH/LOW, k = 1 (groups: source)",
    }

    sizes = client.evaluate(session, CHECK_RESULTS)
    assert len(sizes) == 5 * 5 + 2 + 2  # five analyses x five figures, EDC and ERC, two trust figures
    assert all(width > 100 and height > 100 for _, width, height in sizes), sizes

    # the views the menu opens: a PNG panel and an Altair SVG chart are drawn at a visible size
    for path in ("results/report/tiny/sface/gradcam/serfiq/maps.png", "results/report/tiny/sface/edc.svg"):
        shown = client.evaluate(session, f"({SHOW_AND_MEASURE})({json.dumps(path)})")
        assert shown and shown[1] > 100 and shown[2] > 100, (path, shown)

    # the front page: its view (an iframe) loads, and it has one row per analysis
    client.evaluate(
        session,
        "app.setView({content: 'html', resultPath: 'results/report/summary.html',"
        " contentPath: results['results/report/summary.html'].data_uri})",
    )
    deadline = time.monotonic() + 10
    while not [f for f in child_frames(client, session) if f.startswith("data:text/html")]:
        assert time.monotonic() < deadline, "the summary iframe did not load"
        time.sleep(0.05)
    rows = client.evaluate(
        session,
        """(() => {
             const uri = results['results/report/summary.html'].data_uri;
             const html = new TextDecoder().decode(Uint8Array.from(atob(uri.split(',')[1]), (c) => c.charCodeAt(0)));
             const doc = new DOMParser().parseFromString(html, 'text/html');
             return doc.querySelectorAll('#summary tbody tr').length;
           })()""",
    )
    assert rows == 5

    errors = [
        e["params"]
        for e in client.events
        if (e.get("method") == "Runtime.exceptionThrown")
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert not errors
    requests = [e["params"]["request"]["url"] for e in client.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests and requests[0] == (tiny_run / "report_browser.html").as_uri()
    assert all(url.startswith(ALLOWED_SCHEMES) for url in requests), [u[:80] for u in requests]
