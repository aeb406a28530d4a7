"""From a run's Artifacts tab, in both Prefect UIs, the final video opens from its link and plays (in Chromium).

V1 also plays it in the outputs card's own player: V1 renders the card's raw <video>; V2 leaves raw HTML out.
"""

from __future__ import annotations

import re

import pytest

from tests.ui.test_run_pages import UIS, WAIT_MS, artifact_id, run_page_url, save_screenshot

pytestmark = pytest.mark.slow

# How far the video at `selector` got in the time given, or why it could not play. Looked up afresh each
# time: V1 may render the card's markdown again just after the page loads, replacing the element.
PLAYS = """selector => new Promise(resolve => {
    const deadline = Date.now() + 30000;
    let v = null, start = 0;
    const check = () => {
        const now = document.querySelector(selector);
        if (now && now !== v) {
            v = now;
            v.muted = true;
            start = v.currentTime;
            v.play().catch(() => {});
        }
        if (v && v.currentTime > start + 0.5) return resolve(v.currentTime - start);
        if (Date.now() > deadline)
            return resolve(v ? `stuck: error=${v.error && v.error.code} ready=${v.readyState} net=${v.networkState}`
                             : "no video element");
        setTimeout(check, 100);
    };
    check();
})"""


def output_link(ui_runs, run_id: str) -> tuple[str, str]:
    """(href, visible text) of the final video's link in the outputs card, as the run stored it."""
    import httpx

    found = httpx.get(f"{ui_runs.server.api_url}/artifacts/{artifact_id(ui_runs, run_id, 'storyboard-outputs')}")
    description = found.json()["description"]
    links = re.findall(rf"\[([^\]]+\.mp4)\]\(({re.escape(ui_runs.media.url)}/objects/[0-9a-f]{{64}})\)", description)
    assert links, f"no media link to the final video in the outputs card:\n{description[-1500:]}"
    path, href = links[0]
    return href, path


def follow(page, href: str):
    """Click the link to `href` as a person would; the page the video then opens in."""
    link = page.locator(f'a[href="{href}"]').first
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page(timeout=WAIT_MS) as opened:
            link.click()
        video_page = opened.value
    else:
        link.click()
        video_page = page
    video_page.wait_for_url(href, timeout=WAIT_MS)
    return video_page


def check_plays(video_page) -> None:
    video = video_page.locator("video").first  # Chromium's own player for a media document
    video.wait_for(timeout=WAIT_MS)
    played = video_page.evaluate(PLAYS, "video")
    assert isinstance(played, float | int) and played > 0.5, played
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [320, 180]


@pytest.mark.parametrize("ui", UIS)
def test_the_final_video_opens_from_its_link_and_plays(ui_runs, browser, ui, tmp_path):
    run_id = ui_runs.runs["storyboard"]
    href, path = output_link(ui_runs, run_id)
    page = browser.new_page()
    page.goto(run_page_url(ui_runs, run_id, ui), wait_until="domcontentloaded")
    page.get_by_text("Artifacts", exact=True).first.click()
    link = page.locator(f'a[href="{href}"]').first
    link.wait_for(timeout=WAIT_MS)
    assert link.inner_text().strip() == path  # the file's full path is what the link shows
    assert page.locator('a[href^="file:"]').count() == 0
    save_screenshot(page, tmp_path, f"{ui}-storyboard-outputs-card", anchor="storyboard-outputs", height=900)

    if ui == "v1":
        assert page.locator(f'video[src="{href}"]').count() == 1  # the card shows the player
    else:
        assert page.locator("video").count() == 0  # V2 drops raw HTML: the link is the way in
    # In both UIs the whole card is a link to the artifact's page: a click on it (on the player or the
    # file's link too) opens that page, where the links and V1's player work.
    link.click()
    page.wait_for_url(re.compile(r".*/artifacts/artifact/"), timeout=WAIT_MS)
    if ui == "v1":
        page.locator(f'video[src="{href}"]').first.wait_for(timeout=WAIT_MS)
        played = page.evaluate(PLAYS, f'video[src="{href}"]')
        assert isinstance(played, float | int) and played > 0.5, played
    video_page = follow(page, href)
    check_plays(video_page)
    if video_page is not page:
        video_page.close()
    page.close()
