"""The rendered book, opened in a real browser: run after `make book` with `pytest tests/check_book.py`.

Every page of _build/html is served over HTTP and opened in headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium) at 1280 px wide. Once it has settled (loaded, images decoded, MathJax
done), the page fails on what a reader would see go wrong, anywhere on the page, navigation included:
- raw TeX delimiters in the visible text, or math that MathJax could not typeset;
- an image that did not load, a traceback or error/stderr output, an absolute path of the machine that built it,
  a console error;
- content cut off or overlapping: anything wider than the text column that does not scroll inside its own
  container, content clipped by a container that hides its overflow, a page that scrolls sideways, sidebars over
  the text; on the pages a new user reads first, a code block that scrolls sideways (cut off mid-line).
Nothing is judged in pixels that depend on the machine (a CPU's name, a wall time, a font): a table may be as wide
as its contents need, provided it scrolls inside its own container. A second, small book built from this
project's configuration and stylesheet holds the extremes (a 60-character device name, a 7-digit wall time, a
full commit hash) and must pass the same checks.
Collapsed sections are opened for the checks, so what a reader can expand is checked too. Every page leaves a
full-page screenshot (collapsed, as a reader first sees it) in _build/screenshots/, and
_build/screenshots/pages.tsv lists each page's length in pixels and the time it took.

Not collected by a plain `pytest` (its name does not start with test_): it needs the rendered book.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("REPRO_BOOK_HTML", ROOT / "_build" / "html"))  # another rendered book, to compare
SHOTS = Path(os.environ.get("REPRO_BOOK_SHOTS", ROOT / "_build" / "screenshots"))
WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--window-size={WIDTH},1000"]
# The pages a new user reads first: no code block there may scroll sideways.
FIRST_READ = {"intro.html", "reproducing.html", "executed/execution.html"}

# Raw TeX left in the text a reader sees: \( \) \[ \] or $...$ that MathJax did not typeset.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$[^$\s][^$\n]{0,200}?\$|\\(frac|lambda|eta|mathrm|sqrt|lVert)\b")
# The browser's own request for /favicon.ico (on the redirect page index.html, which links no icon), not the page's.
BROWSER_PROBE = re.compile(r"/favicon\.ico - Failed to load resource")
# Paths of a build machine (home, temporary, system or virtual-environment folders).
MACHINE_PATH = re.compile(r"(?<![\w.])/(home|root|tmp|work|usr|opt|var|srv|mnt)/[\w.-]+|site-packages|[A-Z]:\\\\Users")


def pages(html: Path = HTML) -> list[str]:
    if not html.is_dir():
        return []
    skip = {"search.html", "genindex.html"}
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture(scope="session")
def server():
    httpd, url = _serve(HTML)
    yield url
    httpd.shutdown()


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


# MathJax 3 is done once its startup promise has resolved (the page typesets everything then, collapsed sections
# included); a page that loads no MathJax has nothing to wait for.
SETTLED = """
const imgs = Array.from(document.images);
const wantsMath = !!document.querySelector('script[src*="mathjax"]');
const mj = window.MathJax;
if (wantsMath && mj && mj.startup && mj.startup.promise && !window.__reproMath) {
  window.__reproMath = 'pending';
  mj.startup.promise.then(() => { window.__reproMath = 'done'; }, () => { window.__reproMath = 'failed'; });
}
const mathDone = !wantsMath || window.__reproMath === 'done' || window.__reproMath === 'failed';
return document.readyState === 'complete' && imgs.every(i => i.complete) && mathDone;
"""

INSPECT = """
const firstRead = arguments[0];
document.querySelectorAll('details').forEach(d => d.open = true);
const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
                        && getComputedStyle(el).visibility !== 'hidden';
const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                     + (el.classList.length ? '.' + Array.from(el.classList).slice(0, 3).join('.') : '');
const say = (el) => name(el) + ': ' + (el.innerText || el.textContent || el.getAttribute('src') || '')
                                        .trim().replace(/\\s+/g, ' ').slice(0, 80);

// The text a reader sees anywhere on the page, navigation included, outside code and typeset math.
const SKIP = 'pre, code, script, style, noscript, textarea, mjx-container, mjx-assistive-mml, .MathJax, '
           + '.MathJax_Preview, .MathJax_Display, .MJX_Assistive_MathML';
const texts = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (node.textContent.trim() && parent && !parent.closest(SKIP) && visible(parent)) texts.push(node.textContent);
}

const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
const column = article.getBoundingClientRect();
const overflowX = (el) => getComputedStyle(el).overflowX;
const scroller = (el) => {
  for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
    if (['auto', 'scroll'].includes(overflowX(a))) return a;
  }
  return null;
};
const layout = [];
// Content wider than the text column scrolls inside its own container, and that container fits the column.
const content = article.querySelectorAll('table, pre, img, svg, mjx-container, p, li, dt, dd, h1, h2, h3, h4, '
                                         + 'figure, blockquote, .cell_output, .output, .highlight, details');
for (const el of content) {
  if (!visible(el)) continue;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || (r.right <= column.right + 1 && r.left >= column.left - 1)) continue;
  const box = scroller(el);
  if (!box) {
    layout.push(`wider than the text column (by ${Math.round(Math.max(r.right - column.right, column.left - r.left))}`
                + ` px) and not in a scrolling container: ${say(el)}`);
  } else {
    const b = box.getBoundingClientRect();
    if (b.right > column.right + 1 || b.left < column.left - 1) layout.push(`scrolling container wider than the `
                                                                           + `text column: ${say(box)}`);
  }
}
// Nothing is clipped: a visible box that hides its horizontal overflow holds no more than it shows (give or take
// half a character: a glyph's italic overhang is not content).
for (const el of document.body.querySelectorAll('*')) {
  const o = overflowX(el);
  const slack = parseFloat(getComputedStyle(el).fontSize) / 2;
  if ((o === 'hidden' || o === 'clip') && el.clientWidth > 1 && el.scrollWidth > el.clientWidth + slack
      && visible(el) && el.innerText && el.innerText.trim()) {
    layout.push(`content cut off (${el.scrollWidth - el.clientWidth} px hidden): ${say(el)}`);
  }
}
// The page itself never scrolls sideways, and the sidebars do not cover the text.
const page = document.documentElement;
if (page.scrollWidth > page.clientWidth + 1) {
  layout.push(`the page scrolls sideways by ${page.scrollWidth - page.clientWidth} px`);
}
for (const side of document.querySelectorAll('.bd-sidebar-primary, .bd-sidebar-secondary')) {
  const s = side.getBoundingClientRect();
  if (visible(side) && s.width > 0 && s.left < column.right - 1 && s.right > column.left + 1
      && s.top < column.bottom && s.bottom > column.top) layout.push(`${name(side)} overlaps the text`);
}
// On the pages a new user reads first, a command is read whole: no code block scrolls sideways.
if (firstRead) {
  for (const pre of article.querySelectorAll('pre')) {
    if (visible(pre) && pre.scrollWidth > pre.clientWidth + 1) {
      layout.push(`code block scrolls sideways by ${pre.scrollWidth - pre.clientWidth} px: ${say(pre)}`);
    }
  }
}

const broken = Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => i.getAttribute('src'));
const errors = Array.from(article.querySelectorAll('.output.error, .output.traceback, .output.stderr, .stderr'))
  .filter(visible).map(e => e.innerText.slice(0, 120));
// math MathJax could not typeset: an error node, or an undefined command (a stray escape) drawn as red text
const badMath = Array.from(document.querySelectorAll(
    'mjx-container [data-mml-node="merror"], mjx-container mtext[mathcolor="red"], [data-mjx-error]'))
  .map(e => (e.getAttribute('data-mjx-error') || '') + e.textContent.slice(0, 60));
return {text: texts.join('\\n'), layout, broken, errors, badMath, html: document.documentElement.outerHTML};
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


def problems_of(browser, url: str, page: str, shot: Path, first_read: bool) -> list[str]:
    """Open `url` (listed as `page` in pages.tsv), leave a screenshot at `shot`, and list what a reader would see
    go wrong on it."""
    start = time.perf_counter()
    browser.get(url)
    _settle(browser)
    height = _screenshot(browser, shot)
    found = browser.execute_script(INSPECT, first_read)
    _settle(browser)  # MathJax typesets what the opened sections revealed
    again = browser.execute_script(INSPECT, first_read)
    found["text"] = again["text"]
    console = [e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"
               and not BROWSER_PROBE.search(e["message"])]
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
    layout = list(dict.fromkeys(found["layout"] + again["layout"]))  # before and after math in opened sections
    if layout:
        problems.append(f"content cut off or overlapping: {layout[:4]}")
    return problems


def _shot_name(page: str, prefix: str = "") -> str:
    return prefix + page.replace("/", "__").removesuffix(".html") + ".png"


@pytest.mark.parametrize("page", pages() or ["(no _build/html: run `make book` first)"])
def test_page_reads_clean_in_a_browser(page, server, browser):
    if not HTML.is_dir():
        pytest.fail("No rendered book in _build/html: run `make book` first.")
    problems = problems_of(browser, f"{server}/{page}", page, SHOTS / _shot_name(page), page in FIRST_READ)
    assert not problems, f"{page}: " + "; ".join(problems)


def test_front_page_scoreboard_lists_every_chapters_verdicts(server, browser):
    """The scoreboard on the front page: a row per verdict of every chapter (book/verdicts.json, written by the same
    build), each with its status badge, and every chapter linked."""
    from repro.chapters import CHAPTERS

    board = json.loads((HTML / "verdicts.json").read_text())
    browser.get(f"{server}/intro.html")
    _settle(browser)
    rows = browser.execute_script("""
        const table = Array.from(document.querySelectorAll('article table'))
          .find(t => t.querySelector('th') && t.querySelector('th').innerText.trim() === 'chapter');
        if (!table) return null;
        return Array.from(table.querySelectorAll('tbody tr')).map(r => ({
          link: (r.querySelector('a') || {}).href || '', badges: r.querySelectorAll('span.verdict').length,
          text: r.innerText}));""")
    assert rows is not None, "no scoreboard table on the front page"
    expected = sum(max(len(ch["book"]), 1) for ch in board["chapters"].values())
    assert len(rows) == expected, f"{len(rows)} scoreboard rows for {expected} verdicts"
    for name in CHAPTERS:
        assert any(r["link"].endswith(f"executed/{name}.html") for r in rows), f"{name} is not on the scoreboard"
        assert board["chapters"][name]["book"], f"{name} showed no verdict at book scale"
    assert all(r["badges"] >= 1 for r in rows), "a scoreboard row without a status"


# ------------------------------------------------------------------------------ a book of machine extremes

LONG_DEVICE = "CPU Intel(R) Xeon(R) Platinum 8480CL Sapphire Rapids (224 threads)"[:60].ljust(60, "x")
LONG_WALL_S = 1_234_567.891  # seven digits of seconds
LONG_COMMIT = "0123456789abcdef0123456789abcdef01234567-dirty"


def _results():
    from repro.store import Result

    provenance = {"commit": LONG_COMMIT, "date": "2026-01-31T23:59:59+00:00", "device": LONG_DEVICE,
                  "seed": 2_147_483_647, "wall_time_s": LONG_WALL_S}
    return {f"{kind} run {i}, seed {2_147_483_647 - i}": Result("learning_order_theory_sweep", 12, "f" * 64, {}, {},
                                                                 {}, provenance, cached=i % 2 == 0)
            for i, kind in enumerate(["patch sep 0.1: L-S+noise", "clean, 50000: S+noise", "P only"])}


def build_fixture_book(dest: Path) -> Path:
    """Render a small book with this project's _config.yml, stylesheet and page tools: a chapter page whose
    provenance table (repro.report.provenance_table, shown as a chapter shows it, and inside a collapsed section)
    holds the extremes above, beside a chapter's collapsed parameters table, and the execution page
    (repro.pages.execution_page) of a run on that device that took that long. Returns the rendered HTML folder."""
    import pandas as pd

    from repro import pages as P
    from repro.report import book_style, collapsed, provenance_table, show_parameters

    book = dest / "book"
    executed = book / "executed"
    (executed / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", dest / "_config.yml")
    shutil.copytree(ROOT / "book" / "_static", book / "_static")
    shutil.copy(ROOT / "book" / "references.bib", book / "references.bib")
    (book / "intro.md").write_text("# Machine extremes\n\nA book whose pages hold the longest values a machine "
                                   "writes into them.\n")
    (book / "references.md").write_text("# References\n\n```{bibliography}\n:all:\n```\n")
    book_style()
    table = provenance_table(_results())
    shown = table._repr_html_()  # what display(table) puts in the notebook

    import IPython.display

    from repro.experiments.sharp_minima import Params

    captured, display = [], IPython.display.display
    IPython.display.display = captured.append  # what the kernel would show
    try:
        show_parameters(Params.resolve("smoke"), "smoke")
        collapsed("Provenance of every result on this page", table, pd.DataFrame({"x": [1.5]}))
    finally:
        IPython.display.display = display
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Provenance with machine extremes: $\\eta/B$ and $\\eta\\lambda$\n\n"
                                              "Every result below ran on a device with a long name, for long."),
                nbformat.v4.new_code_cell("display(provenance_table(runs))", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": shown, "text/plain": repr(table)})]),
                *[nbformat.v4.new_code_cell("collapsed(...)", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": html.data, "text/plain": "<details>"})]) for html in captured]]
    for cell in nb.cells[1:]:
        cell.metadata["tags"] = ["remove-input"]
    nb = P.clean(nb)
    nb.metadata["repro"] = {"preset": "book", "wall_time_s": LONG_WALL_S, "device": LONG_DEVICE,
                            "commit": LONG_COMMIT, "date": "2026-01-31 23:59 UTC"}
    nbformat.write(nb, executed / "provenance.ipynb")
    nbformat.write(nb, executed / "notebooks" / "provenance.ipynb")
    P.execution_page(executed, {"provenance": "Provenance with machine extremes: a chapter"}, executed / "notebooks")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: executed/provenance\n"
                                   "  - file: executed/execution\n  - file: references\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(book), "--path-output", str(dest), "--config",
           str(dest / "_config.yml"), "--toc", str(book / "_toc.yml"), "--warningiserror", "--nitpick",
           "--keep-going"]
    out = subprocess.run(cmd, cwd=dest, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    P.install_mathjax(dest / "_build" / "html")
    return dest / "_build" / "html"


@pytest.fixture(scope="session")
def fixture_book(tmp_path_factory):
    html = build_fixture_book(tmp_path_factory.mktemp("fixture-book"))
    httpd, url = _serve(html)
    yield html, url
    httpd.shutdown()


def test_machine_extremes_read_clean(fixture_book, browser):
    """A 60-character device name, a 7-digit wall time and a 46-character commit, in the provenance table and on
    the execution page: the same checks pass, so no machine can turn the book's check red."""
    html, url = fixture_book
    text = json.dumps([(html / p).read_text() for p in ("executed/provenance.html", "executed/execution.html")])
    assert LONG_DEVICE in text and "20576.1 min" in text and LONG_COMMIT in text
    failed = {}
    for page in pages(html):
        problems = problems_of(browser, f"{url}/{page}", f"extremes/{page}", SHOTS / _shot_name(page, "extremes__"),
                               page in FIRST_READ)
        if problems:
            failed[page] = problems
    assert not failed, failed
