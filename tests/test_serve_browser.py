"""The explorer page in a real headless browser: Debian's chromium driven by Playwright.

Playwright's own browser download needs the internet, so the test launches the system's
chromium (`apt-get install chromium`; .ci/run installs it). It skips, saying why, only where
no chromium binary or no Playwright is installed.
"""

import base64
import io
import os
import shutil
import time
from contextlib import contextmanager
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from PIL import Image

from serving import running_server

CHROMIUM = next((p for p in (os.environ.get("GANS_TEST_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and os.path.exists(p)), None)
WAIT_MS = 30_000  # every wait is bounded: a hung page fails the test instead of CI


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set GANS_TEST_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@contextmanager
def page_over(browser, *roots):
    """A fresh page on a server over `roots`; on leaving, no JavaScript error was raised and no
    request left the server."""
    with running_server(list(roots)) as url:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.base = url
        page.crashes, page.outside = [], []
        page.on("pageerror", lambda exc: page.crashes.append(str(exc)))
        page.on("request", lambda request: None if request.url.startswith(
            (url, "data:", "blob:")) else page.outside.append(request.url))
        yield page
        context.close()
    assert not page.crashes, f"JavaScript errors: {page.crashes}"
    assert not page.outside, f"requests outside the server: {page.outside}"


@pytest.fixture
def page(browser, serve_runs):
    with page_over(browser, serve_runs) as page:
        yield page


def wait_until(page, script: str, arg=None):
    """Polls `script` (a JavaScript expression, or a function of `arg`) until it is true.
    Playwright's wait_for_function evaluates strings in a way the page's Content Security
    Policy forbids (no eval), and the test keeps that policy on."""
    deadline = time.monotonic() + WAIT_MS / 1000
    expression = script if script.lstrip().startswith(("(", "function")) or "=>" in script \
        else f"() => ({script})"
    while True:
        value = page.evaluate(expression, arg) if arg is not None else page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {WAIT_MS} ms: {script}; message shown: "
                                 f"{page.inner_text('#message')!r}")
        time.sleep(0.1)


def grid_sources(page) -> list:
    return page.eval_on_selector_all("#grid img", "nodes => nodes.map(n => n.src)")


def grid_captions(page) -> list:
    return page.eval_on_selector_all("#grid figcaption span", "nodes => nodes.map(n => n.textContent)")


def decoded(src: str) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def wait_for_new_grid(page, before: list) -> list:
    wait_until(page, 
        "before => { const now = [...document.querySelectorAll('#grid img')].map(n => n.src);"
        " return now.length > 0 && now.join() !== before.join(); }", arg=before)
    return grid_sources(page)


def test_sample_truncation_class_pins_and_walk(page, style_ckpt):
    page.goto(f"{page.base}/?ckpt={style_ckpt}&n=4&seed=3")
    page.wait_for_selector("body[data-ready='1']")
    wait_until(page, "document.querySelectorAll('#grid img').length === 4")
    first = grid_sources(page)
    assert all(page.eval_on_selector_all(
        "#grid img", "nodes => nodes.map(n => n.complete && n.naturalWidth === 16)"))
    assert grid_captions(page)[0].startswith("3 · T-shirt/top")  # every class in turn

    # The truncation slider moves: the images change and the URL says so.
    page.fill("#psi", "0.5")
    truncated = wait_for_new_grid(page, first)
    assert page.inner_text("#psi-out") == "0.5" and query(page)["psi"] == "0.5"

    # A class by name.
    page.select_option("#class", label="Sneaker")
    wait_until(page, "[...document.querySelectorAll('#grid figcaption span')]"
                           ".every(n => n.textContent.endsWith('Sneaker'))")
    sneakers = grid_sources(page)
    assert sneakers != truncated and query(page)["class"] == "7"

    # The same seed gives the same pixels: the URL alone brings the view back.
    shared = page.url
    page.goto(f"{page.base}/?ckpt={style_ckpt}")
    page.wait_for_selector("body[data-ready='1']")
    page.goto(shared)
    page.wait_for_selector("body[data-ready='1']")
    wait_until(page, "document.querySelectorAll('#grid img').length === 4")
    again = grid_sources(page)
    assert all(np.array_equal(decoded(a), decoded(b)) for a, b in zip(again, sneakers))

    # Pin two images; the download link of each carries the same seed.
    page.click("#grid figure:nth-child(1) img")
    page.click("#grid figure:nth-child(2) img")
    wait_until(page, "document.querySelectorAll('#pins .pin').length === 2")
    assert query(page)["pins"] == "3:7,4:7"
    assert page.eval_on_selector_all("#grid figure.pinned", "n => n.length") == 2
    href = page.get_attribute("#grid figure:nth-child(1) a", "href")
    assert "seed=3" in href and "class=7" in href

    # Play a walk between them.
    page.click("nav button[data-panel='walk']")
    page.fill("#frames", "4")
    page.dispatch_event("#frames", "change")
    page.click("#walk-start")
    wait_until(page, "(() => { const i = document.getElementById('walk-image');"
                           " return i && i.complete && i.naturalWidth === 16; })()")
    assert page.inner_text("#walk-state").startswith("done")
    assert page.get_attribute("#walk-result a", "href").endswith("/result")
    assert not page.is_visible("#message")


def test_errors_are_messages_not_blank_pages(page, style_ckpt, dcgan_ckpt):
    page.goto(f"{page.base}/?ckpt={style_ckpt}&n=100")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#message:not([hidden])")
    assert "n=100: must be from 1 to 64" in page.inner_text("#message")
    assert page.is_visible("header") and page.is_visible("nav")

    page.goto(f"{page.base}/?ckpt=../../etc/passwd")
    page.wait_for_selector("body[data-ready='1']")
    assert "not allowed" in page.inner_text("#message")

    # A good request afterwards clears the message.
    page.goto(f"{page.base}/?ckpt={dcgan_ckpt}&n=4")
    wait_until(page, "document.querySelectorAll('#grid img').length === 4")
    assert not page.is_visible("#message")
    # A DCGAN has no psi: the slider is hidden, and style mixing is greyed out.
    assert not page.is_visible("#psi")
    assert page.is_disabled("nav button[data-panel='mix']")


def test_runs_mix_nearest_and_compare_panels(page, style_ckpt, dcgan_ckpt):
    page.goto(f"{page.base}/?panel=runs&run=runs/dcgan-tiny/version_0&ckpt={style_ckpt}")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#chart-fid svg polyline")
    assert page.eval_on_selector_all("#chart-loss svg polyline", "n => n.length") == 2
    assert "250.50 @ 4" in page.inner_text("#runs-table")
    step = page.get_attribute("#step-image", "src")
    page.fill("#step", "0")
    wait_until(page, "s => document.getElementById('step-image').src !== s", arg=step)
    assert "step_0000002.png" in page.get_attribute("#step-image", "src")
    assert query(page)["step"] == "0"

    page.click("nav button[data-panel='mix']")
    wait_until(page, "document.getElementById('mix-image').naturalWidth > 0")
    page.fill("#layer-start", "0")
    page.dispatch_event("#layer-start", "change")
    wait_until(page, "new URLSearchParams(location.search).get('layers') === '0-6'")

    page.goto(f"{page.base}/?panel=nearest&ckpt={style_ckpt}&pins=5:8&k=3")
    wait_until(page, "document.querySelectorAll('.neighbours figure').length === 4")
    assert "training images" in page.inner_text("#nearest-result")

    page.goto(f"{page.base}/?panel=compare&ckpt={style_ckpt}&ckpt2={dcgan_ckpt}&n=4")
    wait_until(page, "document.querySelectorAll('#compare-a img').length === 4 &&"
                           " document.querySelectorAll('#compare-b img').length === 4")
    assert not page.is_visible("#message")


def test_project_panel_uploads_converges_and_varies(page, dcgan_ckpt, style_ckpt, tmp_path):
    # An upload: the DCGAN's own sample of seed 4, saved as a user's file would be.
    page.goto(f"{page.base}/?ckpt={dcgan_ckpt}&n=1&seed=4")
    page.wait_for_selector("body[data-ready='1']")
    wait_until(page, "document.querySelectorAll('#grid img').length === 1")
    upload = tmp_path / "mine.png"
    Image.fromarray(decoded(grid_sources(page)[0])).save(upload)
    page.click("nav button[data-panel='project']")
    assert page.is_hidden("#project-space option:text('w')")  # a DCGAN has only z
    page.set_input_files("#project-file", str(upload))
    page.fill("#project-steps", "40")
    page.click("#project-start")
    wait_until(page, "document.getElementById('project-image')")
    # Snapshots streamed in, then the projection, which is close to the upload.
    frames = page.eval_on_selector_all("#project-frames img", "nodes => nodes.length")
    assert frames >= 2
    state = page.inner_text("#project-state")
    assert state.startswith("done") and float(state.split("PSNR ")[1].split(" dB")[0]) > 25
    projection = page.eval_on_selector("#project-image", "n => n.src")
    image = page.evaluate("async (url) => { const b = await (await fetch(url)).blob();"
                          " return [...new Uint8Array(await b.arrayBuffer())]; }", projection)
    pixels = np.array(Image.open(io.BytesIO(bytes(image))).convert("RGB")).astype(float)
    assert np.abs(pixels - np.array(Image.open(upload).convert("RGB"))).mean() < 16

    # Variations around it: the projection and 3 others in one strip.
    page.fill("#project-n", "3")
    page.click("#project-vary")
    wait_until(page, "(() => { const i = document.getElementById('project-around');"
                     " return i.complete && i.naturalWidth > 3 * i.naturalHeight; })()")

    # A class-conditional style model: w space, the model's own image of a seed, mixed.
    page.goto(f"{page.base}/?ckpt={style_ckpt}&panel=project")
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#project-space", "w")
    page.fill("#project-steps", "10")
    page.click("#project-start")
    wait_until(page, "document.getElementById('project-image')")
    page.fill("#project-seeds", "1,2")
    page.click("#project-mix")
    wait_until(page, "(() => { const i = document.getElementById('project-around');"
                     " return i.complete && i.naturalWidth > 0; })()")
    page.select_option("#project-toward", label="Sneaker")
    page.click("#project-move")
    wait_until(page, "(() => { const i = document.getElementById('project-around');"
                     " return i.complete && i.naturalWidth > 6 * i.naturalHeight; })()")
    assert page.inner_text("#message") == ""


@pytest.fixture
def sketch_page(browser, serve_runs, sketch_runs):
    """The page over the explorer runs and the pix2pix run, as `page` is over the first."""
    with page_over(browser, serve_runs, sketch_runs) as page:
        yield page


def stroke(page, points: list) -> None:
    """One stroke with the mouse through canvas coordinates (the canvas is 256 px)."""
    box = page.locator("#sketch-canvas").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.up()


def output_src(page) -> str:
    return page.get_attribute("#sketch-output", "src") or ""


def test_sketch_panel_translates_strokes_as_they_are_drawn(sketch_page, sketch_ckpt, dcgan_ckpt):
    page = sketch_page
    # A noise model: the panel says what it needs and offers the pix2pix checkpoint.
    page.goto(f"{page.base}/?panel=sketch&ckpt={dcgan_ckpt}")
    page.wait_for_selector("body[data-ready='1']")
    assert page.is_visible("#sketch-needs") and not page.is_visible("#sketch-canvas")
    assert "need a pix2pix run" in page.inner_text("#sketch-needs-text")
    page.click("#sketch-choices button")
    page.wait_for_selector("#sketch-canvas", state="visible")
    assert query(page)["ckpt"] == sketch_ckpt and query(page)["panel"] == "sketch"
    # The seed panels, and projection into a latent, are off for an image-to-image model.
    assert page.is_disabled("nav button[data-panel='sample']")
    assert page.is_disabled("nav button[data-panel='project']")

    stroke(page, [(60, 60), (196, 60), (196, 220), (60, 220), (60, 60)])
    wait_until(page, "(() => { const i = document.getElementById('sketch-output');"
                     " return i.src.startsWith('data:image/png') && i.complete && i.naturalWidth === 32; })()")
    first = output_src(page)
    assert page.get_attribute("#sketch-input", "src").startswith("data:image/png")
    # The model saw the drawing: its input has dark lines on white.
    seen = decoded(page.get_attribute("#sketch-input", "src"))
    assert (seen == 0).any() and (seen == 255).mean() > 0.5

    # More strokes: a new image comes without any other action.
    stroke(page, [(60, 60), (20, 110)])
    stroke(page, [(196, 60), (236, 110)])
    wait_until(page, "before => { const s = document.getElementById('sketch-output').src;"
                     " return s.startsWith('data:') && s !== before; }", arg=first)
    changed = output_src(page)
    assert not np.array_equal(decoded(changed), decoded(first))
    wait_until(page, "document.getElementById('sketch-state').textContent.startsWith('3 strokes')")
    assert not page.is_visible("#message")

    # Clear empties the canvas and the images; drawing again brings one back.
    page.click("#sketch-clear")
    assert output_src(page) == ""
    stroke(page, [(100, 40), (100, 230)])
    wait_until(page, "document.getElementById('sketch-output').src.startsWith('data:')")


def test_class_picker_names_the_classes_of_a_labelled_folder(browser, labelled_runs,
                                                            labelled_ckpt):
    from conftest import FOLDER_CLASSES

    with page_over(browser, labelled_runs) as page:
        page.goto(f"{page.base}/?ckpt={labelled_ckpt}&n=4&seed=0")
        page.wait_for_selector("body[data-ready='1']")
        wait_until(page, "document.querySelectorAll('#grid img').length === 4")
        options = page.eval_on_selector_all("#class option",
                                            "nodes => nodes.map(n => n.textContent)")
        assert options == ["every class in turn", *FOLDER_CLASSES]
        assert grid_captions(page) == ["0 · boots", "1 · coats", "2 · hats", "3 · boots"]

        before = grid_sources(page)
        page.select_option("#class", label="hats")
        wait_until(page, "[...document.querySelectorAll('#grid figcaption span')]"
                         ".every(n => n.textContent.endsWith(' · hats'))")
        assert grid_sources(page) != before and query(page)["class"] == "2"

        page.click("nav button[data-panel='project']")
        names = page.eval_on_selector_all("#project-toward option",
                                          "nodes => nodes.map(n => n.textContent)")
        assert names == list(FOLDER_CLASSES)
        assert not page.is_visible("#message")
