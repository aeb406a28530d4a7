"""A finished run's page in both Prefect UIs shows its cost table, cost summary and media previews (in Chromium)."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageSequence

from deployments.params import load_params

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
UIS = ("v1", "v2")
WAIT_MS = 60_000


def view_at_url(runs, flow_run_id: str) -> str:
    """The run's page as Prefect's own "View at" console line links it (that link opens the V1 UI)."""
    urls = re.findall(rf"View at (\S+/runs/flow-run/{flow_run_id})", runs.console)
    assert urls, "Prefect printed no 'View at' link for the run"
    return urls[0]


def run_page_url(runs, flow_run_id: str, ui: str) -> str:
    v1 = view_at_url(runs, flow_run_id)
    assert v1 == f"{runs.server.url}/runs/flow-run/{flow_run_id}"
    return v1 if ui == "v1" else f"{runs.server.url}/v2/runs/flow-run/{flow_run_id}"


def artifact_id(runs, flow_run_id: str, key: str) -> str:
    found = httpx.post(
        f"{runs.server.api_url}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [flow_run_id]}}},
    ).json()
    assert found, f"no artifact {key!r} on the run"
    return found[0]["id"]


def open_artifacts_tab(page, url: str, min_previews: int) -> list[dict]:
    """Open the run page, click its Artifacts tab, wait until `min_previews` inline images have loaded."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.wait_for_function(
        """n => {
            const imgs = [...document.images].filter(i => i.src.startsWith('data:image/'));
            return imgs.length >= n && imgs.every(i => i.complete);
        }""",
        arg=min_previews,
        timeout=WAIT_MS,
    )
    return page.eval_on_selector_all(
        "img",
        """els => els.filter(e => e.src.startsWith('data:image/')).map(e => ({
            src: e.src, alt: e.alt, natural: e.naturalWidth, shown: e.getBoundingClientRect().width}))""",
    )


def decode(src: str) -> tuple[str, Image.Image]:
    head, _, data = src.partition(",")
    return head.removeprefix("data:").removesuffix(";base64"), Image.open(io.BytesIO(base64.b64decode(data)))


def check_preview_content(previews: list[dict], kinds_expected: set[str]) -> None:
    """What a person sees in the previews: moving clips, pictures with detail, waveforms with a signal."""
    kinds: dict[str, int] = {}
    for preview in previews:
        mime, img = decode(preview["src"])
        kinds[mime] = kinds.get(mime, 0) + 1
        if mime == "image/webp":  # a video's preview: it must move
            frames = [np.asarray(f.convert("L"), dtype=np.float32) for f in ImageSequence.Iterator(img)]
            assert len(frames) >= 5, f"{preview['alt']}: only {len(frames)} frame(s) in the video preview"
            assert np.abs(frames[0] - frames[-1]).mean() > 1.0, f"{preview['alt']}: the video preview does not move"
            assert frames[0].std() > 5, f"{preview['alt']}: the video preview is a flat colour"
        elif mime == "image/jpeg":  # a still's thumbnail
            assert np.asarray(img.convert("L"), dtype=np.float32).std() > 5, f"{preview['alt']}: a flat thumbnail"
        elif mime == "image/png":  # an audio waveform: the drawn envelope covers part of the strip
            px = np.asarray(img.convert("RGB"), dtype=np.int16)
            drawn = (np.abs(px - np.array([96, 165, 250])).sum(axis=2) < 30).mean()
            assert 0.05 < drawn < 0.95, f"{preview['alt']}: waveform covers {drawn:.0%} of its strip"
        else:
            pytest.fail(f"unexpected preview type {mime}")
    assert set(kinds) == kinds_expected, kinds


def save_screenshot(page, tmp_path, name: str, anchor: str | None = None, height: int = 2000) -> None:
    """What a person sees from `anchor` (text on the page) down, on a tall screen, into the test's folder.

    V1 scrolls inside its own container, so a full-page shot would stop at the first screen; a tall
    viewport shows the cards instead. With BOARDFLOW_UPDATE_SCREENSHOTS=1 the shot also goes to docs/.
    """
    page.set_viewport_size({"width": 1280, "height": height})
    if anchor:
        page.get_by_text(anchor, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1280, "height": 900})
    if os.environ.get("BOARDFLOW_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)


@pytest.mark.parametrize("ui", UIS)
def test_storyboard_run_page_shows_costs_and_previews(ui_runs, browser, ui, tmp_path):
    run_id = ui_runs.runs["storyboard"]
    scenes = len(load_params("storyboard-preview")["scenes"])
    # Per scene: narration, image, clip, narrated clip; then cut, music, final; plus the final video as an output.
    expected = 4 * scenes + 3 + 1
    page = browser.new_page()
    previews = open_artifacts_tab(page, run_page_url(ui_runs, run_id, ui), expected)
    save_screenshot(page, tmp_path, f"{ui}-storyboard-run-artifacts", anchor="Artifacts")

    assert len(previews) == expected, [p["alt"] for p in previews]
    assert all(p["natural"] > 0 and p["shown"] > 0 for p in previews), [p for p in previews if not p["natural"]]
    check_preview_content(previews, {"image/webp", "image/jpeg", "image/png"})
    labels = {p["alt"] for p in previews}
    assert {"final", "music", "cut", "video", "narration[0]", f"image[{scenes - 1}]"} <= labels, labels

    text = page.inner_text("body")
    assert re.search(r"storyboard-costs", text) and re.search(r"\btable\b", text, re.I), "no cost table card"
    assert "storyboard-cost-summary" in text
    assert re.search(r"Cost of\s*storyboard\s*: spent \$0\.00", text), "the cost summary's totals are not shown"

    table_id = artifact_id(ui_runs, run_id, "storyboard-costs")
    base = ui_runs.server.url + ("" if ui == "v1" else "/v2")
    page.goto(f"{base}/artifacts/artifact/{table_id}", wait_until="domcontentloaded")
    page.wait_for_selector("table", timeout=WAIT_MS)
    save_screenshot(page, tmp_path, f"{ui}-storyboard-cost-table", height=900)
    # The page also shows the description (the summary's per-provider table): count rows naming a generator.
    rows = page.locator("table tbody tr", has_text="local/")
    steps = 4 * scenes + 3
    if ui == "v2":  # V2 pages tables ten rows at a time
        assert page.get_by_text(f"Page 1 of {-(-steps // 10)}").count() == 1
    assert rows.count() == (min(steps, 10) if ui == "v2" else steps), "one row per step run in the cost table"
    table_text = "\n".join(rows.all_inner_texts())
    # "final" starts last, so its row is on V2's second page.
    for expected_text in ("narration[0]", "local/ken-burns", "local/mix", *(["final"] if ui == "v1" else [])):
        assert expected_text in table_text
    page.close()


@pytest.mark.parametrize("ui", UIS)
def test_batch_run_page_shows_results_costs_and_previews(ui_runs, browser, ui, tmp_path):
    run_id = ui_runs.runs["batch"]
    rows = 3  # deployments/batches/slideshow-small.csv
    page = browser.new_page()
    previews = open_artifacts_tab(page, run_page_url(ui_runs, run_id, ui), rows)
    save_screenshot(page, tmp_path, f"{ui}-batch-run-artifacts", anchor="Artifacts")

    assert sorted(p["alt"] for p in previews) == [f"row {i}" for i in range(1, rows + 1)]
    assert all(p["natural"] > 0 and p["shown"] > 0 for p in previews)
    check_preview_content(previews, {"image/webp"})  # one moving preview per row's slide

    text = page.inner_text("body")
    assert "slideshow-batch-results" in text and "slideshow-batch-previews" in text
    summary = rf"Batch of\s*slideshow\s*: {rows} row\(s\)\s*— {rows} completed · 0 from cache · 0 failed"
    assert re.search(summary, text), "the batch summary's counts are not shown"
    assert re.search(r"spent \$0\.00", text), "the batch's spend is not shown"

    table_id = artifact_id(ui_runs, run_id, "slideshow-batch-results")
    base = ui_runs.server.url + ("" if ui == "v1" else "/v2")
    page.goto(f"{base}/artifacts/artifact/{table_id}", wait_until="domcontentloaded")
    page.wait_for_selector("table", timeout=WAIT_MS)
    save_screenshot(page, tmp_path, f"{ui}-batch-results-table", height=900)
    header = page.locator("table thead").last.inner_text()
    assert "cost_usd" in header and "saved_usd" in header and "status" in header
    done = page.locator("table tbody tr", has_text="completed")
    assert done.count() == rows, "one completed row per CSV row in the results table"
    page.close()


MONEY = re.compile(r"^≈?\$\d+\.\d{2,}$")
COST_COLUMNS = ["step", "generator", "provider", "status", "estimated", "actual", "saved", "seconds"]


def artifacts_of(runs, flow_run_id: str) -> list[dict]:
    """Every artifact of the run and of its task runs, keyed or not."""
    body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
    return httpx.post(f"{runs.server.api_url}/artifacts/filter", json=body, timeout=30).json()


def header_gaps(page, table) -> list[tuple[str, str, float]]:
    """(cell, next cell, pixels between their texts) along a table's header row: what a reader sees."""
    return table.evaluate(
        """t => {
            const cells = [...t.querySelectorAll('thead th')];
            const box = c => {
                const r = document.createRange();
                r.selectNodeContents(c);
                return r.getBoundingClientRect();
            };
            return cells.slice(1).map((c, i) =>
                [cells[i].innerText.trim(), c.innerText.trim(), box(c).left - box(cells[i]).right]);
        }"""
    )


def open_artifact(page, runs, ui: str, flow_run_id: str, key: str):
    base = runs.server.url + ("" if ui == "v1" else "/v2")
    page.goto(f"{base}/artifacts/artifact/{artifact_id(runs, flow_run_id, key)}", wait_until="domcontentloaded")
    page.wait_for_selector("table thead th", timeout=WAIT_MS)


def artifacts_tab_text(page, runs, flow_run_id: str, ui: str, card: str) -> str:
    """The run page's Artifacts tab as text, once the card named `card` is shown."""
    page.goto(run_page_url(runs, flow_run_id, ui), wait_until="domcontentloaded")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text(card, exact=False).first.wait_for(timeout=WAIT_MS)
    return page.inner_text("body")


@pytest.mark.parametrize("ui", UIS)
def test_cost_cards_are_readable_tables_in_dollars(ui_runs, browser, ui, tmp_path):
    run_id = ui_runs.runs["storyboard"]
    page = browser.new_page()
    cards = artifacts_tab_text(page, ui_runs, run_id, ui, "storyboard-cost-summary")
    assert "providerstepscached" not in cards.replace(" ", "").replace("\n", "").replace("\t", "")
    assert re.search(r"Cost of\s*storyboard\s*: spent \$0\.00", cards)

    # The summary: its per-provider table has a cell per column, with space between them.
    open_artifact(page, ui_runs, ui, run_id, "storyboard-cost-summary")
    save_screenshot(page, tmp_path, f"{ui}-storyboard-cost-summary", height=900)
    tables = page.locator("table", has=page.locator("th", has_text="provider"))
    assert tables.count() == 1, "the summary's table is shown once (not again, squashed, in the description)"
    heads = [h.strip() for h in tables.first.locator("thead th").all_inner_texts()]
    assert heads == ["provider", "steps", "cached", "estimated", "actual", "saved"]
    gaps = header_gaps(page, tables.first)
    assert all(gap >= 8 for _, _, gap in gaps), f"header cells run together: {gaps}"
    local = [
        c.strip() for c in tables.first.locator("tbody tr", has_text="local").first.locator("td").all_inner_texts()
    ]
    assert local[0] == "local" and all(MONEY.match(c) for c in local[3:]), local

    # The cost table: named columns, money as dollars.
    open_artifact(page, ui_runs, ui, run_id, "storyboard-costs")
    heads = [h.strip() for h in page.locator("table thead th").all_inner_texts() if h.strip()]
    assert heads == COST_COLUMNS, heads
    first = [c.strip() for c in page.locator("table tbody tr", has_text="local/").first.locator("td").all_inner_texts()]
    money = first[heads.index("estimated") : heads.index("saved") + 1]
    assert len(money) == 3 and all(MONEY.match(c) for c in money), first
    page.close()


@pytest.mark.parametrize("ui", UIS)
def test_no_progress_card_is_anonymous(ui_runs, browser, ui):
    for what, run_id in ui_runs.runs.items():
        progress = [a for a in artifacts_of(ui_runs, run_id) if a["type"] == "progress"]
        anonymous = [a for a in progress if not a["key"] or not a["description"]]
        assert not anonymous, f"{what}: progress artifacts without a key or description: {anonymous}"
        page = browser.new_page()
        text = artifacts_tab_text(page, ui_runs, run_id, ui, "cost-summary")
        assert "No description" not in text, f"{what}: a card says 'No description'"
        page.close()


@pytest.mark.parametrize("ui", UIS)
def test_a_batch_run_carries_the_cost_table_of_its_rows(ui_runs, browser, ui, tmp_path):
    run_id = ui_runs.runs["batch"]
    page = browser.new_page()
    text = artifacts_tab_text(page, ui_runs, run_id, ui, "slideshow-batch-costs")
    assert "slideshow-batch-cost-summary" in text
    assert re.search(r"Cost of the\s*slideshow\s*batch: spent \$0\.00", text), "the batch's cost totals are not shown"

    open_artifact(page, ui_runs, ui, run_id, "slideshow-batch-costs")
    save_screenshot(page, tmp_path, f"{ui}-batch-cost-table", height=900)
    heads = [h.strip() for h in page.locator("table thead th").all_inner_texts() if h.strip()]
    assert heads == ["row", *COST_COLUMNS], heads
    shown = page.locator("table tbody tr", has_text="local/")
    steps = 3 * 4  # three CSV rows of the four-step slideshow
    assert shown.count() == (min(steps, 10) if ui == "v2" else steps), "one row per step of every batch row"
    page.close()
