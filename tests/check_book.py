"""The rendered book, opened in a real browser: run after `make book` with `pytest tests/check_book.py`.

Every page of _build/html is served over HTTP and opened in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) at 1280 px wide. Once it has settled (loaded, images decoded, MathJax
done), the page fails on: raw TeX delimiters in the visible text or math that MathJax could not typeset, an
image that did not load, a traceback or error/stderr output, an absolute path of the machine that built it, a
console error, or a table wider than the content column. Collapsed sections are opened for the checks, so what
a reader can expand is checked too.
Every page leaves a full-page screenshot (collapsed, as a reader first sees it) in _build/screenshots/, and
_build/screenshots/pages.tsv lists each page's length in pixels and the time it took.

Not collected by a plain `pytest` (its name does not start with test_): it needs the rendered book.
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("REPRO_BOOK_HTML", ROOT / "_build" / "html"))  # another rendered book, to compare
SHOTS = Path(os.environ.get("REPRO_BOOK_SHOTS", ROOT / "_build" / "screenshots"))
WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--window-size={WIDTH},1000"]

# Raw TeX left in the text a reader sees: \( \) \[ \] or $...$ that MathJax did not typeset.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$[^$\s][^$\n]{0,200}?\$|\\(frac|lambda|eta|mathrm|sqrt|lVert)\b")
# Paths of a build machine (home, temporary, system or virtual-environment folders).
MACHINE_PATH = re.compile(r"(?<![\w.])/(home|root|tmp|work|usr|opt|var|srv|mnt)/[\w.-]+|site-packages|[A-Z]:\\\\Users")


def pages() -> list[str]:
    if not HTML.is_dir():
        return []
    skip = {"search.html", "genindex.html"}
    return sorted(p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


@pytest.fixture(scope="session")
def server():
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.fail("Chromium or chromedriver is missing: `apt-get install chromium chromium-driver` (Debian).")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "pages.tsv").write_text("page\theight_px\tseconds\n")
    yield driver
    driver.quit()


SETTLED = """
const imgs = Array.from(document.images);
const mj = window.MathJax;
const mathDone = !mj || !mj.Hub || (mj.Hub.queue.pending === 0 && !mj.Hub.queue.running
                                    && document.querySelectorAll('.MathJax_Processing').length === 0);
return document.readyState === 'complete' && imgs.every(i => i.complete) && mathDone;
"""

INSPECT = """
const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
document.querySelectorAll('details').forEach(d => d.open = true);
const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
// visible text outside code blocks
const clone = article.cloneNode(true);
clone.querySelectorAll('pre, code, script, style, .MathJax_Preview, .MathJax, .MathJax_Display, .MJX_Assistive_MathML')
     .forEach(e => e.remove());
document.body.appendChild(clone);
clone.style.position = 'absolute'; clone.style.left = '-99999px'; clone.style.width = article.clientWidth + 'px';
const text = clone.innerText;
clone.remove();
const column = article.getBoundingClientRect();
const wide = Array.from(article.querySelectorAll('table')).filter(visible).map(t => {
  const r = t.getBoundingClientRect();
  return {overflow_px: Math.round(r.right - column.right), width: Math.round(r.width),
          columns: Array.from(t.querySelectorAll('th')).map(h => h.innerText.trim()).filter(x => x)
                        .slice(0, 6).join(' | ')};
}).filter(t => t.overflow_px > 1);
const broken = Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => i.getAttribute('src'));
const errors = Array.from(article.querySelectorAll('.output.error, .output.traceback, .output.stderr, .stderr'))
  .filter(visible).map(e => e.innerText.slice(0, 120));
// math MathJax could not typeset: an error node, or an undefined command (a stray escape) drawn as red text
const badMath = Array.from(article.querySelectorAll(
    'mjx-container [data-mml-node="merror"], mjx-container mtext[mathcolor="red"], [data-mjx-error]'))
  .map(e => (e.getAttribute('data-mjx-error') || '') + e.textContent.slice(0, 60));
return {text, wide, broken, errors, badMath, html: document.documentElement.outerHTML};
"""


def _settle(driver, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if driver.execute_script(SETTLED):
            time.sleep(0.3)  # a last layout pass (fonts, late images)
            if driver.execute_script(SETTLED):
                return
        time.sleep(0.2)
    raise AssertionError("the page did not settle within 60 s (loading, images or MathJax)")


def _screenshot(driver, path: Path) -> int:
    height = int(driver.execute_script(
        "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"))
    # The viewport is made as tall as the page, so the page is laid out once as a whole (capturing beyond a
    # short viewport can shift the layout sideways), then restored.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.write_bytes(base64.b64decode(shot["data"]))
    return height


@pytest.mark.parametrize("page", pages() or ["(no _build/html: run `make book` first)"])
def test_page_reads_clean_in_a_browser(page, server, browser):
    if not HTML.is_dir():
        pytest.fail("No rendered book in _build/html: run `make book` first.")
    start = time.perf_counter()
    browser.get(f"{server}/{page}")
    _settle(browser)
    height = _screenshot(browser, SHOTS / (page.replace("/", "__").removesuffix(".html") + ".png"))
    found = browser.execute_script(INSPECT)
    _settle(browser)  # MathJax typesets what the opened sections revealed
    found["text"] = browser.execute_script(INSPECT)["text"]
    console = [e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    with (SHOTS / "pages.tsv").open("a") as f:
        f.write(f"{page}\t{height}\t{time.perf_counter() - start:.1f}\n")

    problems = []
    tex = sorted({m.group(0) for m in RAW_TEX.finditer(found["text"])})
    if tex:
        problems.append(f"raw TeX in the visible text: {tex[:5]}")
    if found["badMath"]:
        problems.append(f"math that did not typeset: {found['badMath'][:5]}")
    if found["broken"]:
        problems.append(f"images that did not load: {found['broken'][:5]}")
    if "Traceback" in found["text"] or found["errors"]:
        problems.append(f"error or stderr output: {found['errors'][:3] or 'Traceback in the text'}")
    paths = sorted({m.group(0) for m in MACHINE_PATH.finditer(found["text"])})
    if str(ROOT) in found["html"] or os.path.expanduser("~") + "/" in found["html"]:
        paths.append(f"{ROOT} in the page's HTML")
    if paths:
        problems.append(f"paths of the build machine: {paths[:5]}")
    if console:
        problems.append(f"console errors: {console[:3]}")
    if found["wide"]:
        problems.append(f"tables wider than the content column: {found['wide'][:3]}")
    assert not problems, f"{page}: " + "; ".join(problems)
