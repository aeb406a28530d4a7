"""Preview cards say where each file lives: a link to the announced media server, else the full path as text."""

from __future__ import annotations

import os
import re

import pytest

from flows.reporting.media import MEDIA_URL_VARIABLE, MediaLinks
from flows.reporting.previews import card_markdown, make_preview
from generators.artifacts import AudioArtifact, ImageArtifact, TextArtifact, VideoArtifact

BASE = "http://127.0.0.1:4210"
STILL = "data:image/webp;base64,AAAA"


async def stored(store, cls, ext: str, **fields):
    obj = await store.put_bytes(os.urandom(256), ext)
    return cls(sha256=obj.sha256, storage_url=obj.url, format=ext, size_bytes=obj.size_bytes, **fields)


async def still(_artifact) -> str:
    return STILL


@pytest.fixture
async def outputs(store):
    return {
        "video": await stored(store, VideoArtifact, "mp4", width=320, height=180, duration=2.0, fps=24),
        "music": await stored(store, AudioArtifact, "wav", duration=2.0, sample_rate=48000, channels=2),
        "image": await stored(store, ImageArtifact, "png", width=64, height=48),
    }


async def card(outputs, store, ctx, links: MediaLinks) -> tuple[str, str]:
    shown = []
    for name, art in outputs.items():
        preview = await make_preview(name, art, store, ctx, still, links)
        preview.player = links.player(art)
        shown.append((name, preview))
    return card_markdown("Outputs of `test`", shown, "output", lead=True)


async def test_with_a_media_server_each_file_links_there_by_its_path_and_outputs_get_players(outputs, store, ctx):
    description, body = await card(outputs, store, ctx, MediaLinks(BASE))
    first_line = description.splitlines()[0]  # all the V1 card shows
    for art in outputs.values():
        path = store.local_path(store.key_for(art.storage_url))
        assert f"[{path}]({BASE}/objects/{art.sha256})" in first_line
        assert description.count(str(path)) == 1  # not repeated in the table below it
        assert f"[{path}]({BASE}/objects/{art.sha256})" in body
    video, music = outputs["video"].sha256, outputs["music"].sha256
    assert f'<video controls preload="metadata" width="320" src="{BASE}/objects/{video}"></video>' in first_line
    assert f'<audio controls preload="metadata" src="{BASE}/objects/{music}"></audio>' in first_line
    assert first_line.count("<video") == 1 and first_line.count("<audio") == 1  # none for the image
    assert "<video" not in body  # the artifact's page shows the description's players above the body
    assert "file://" not in description + body


async def test_without_a_media_server_the_full_path_is_plain_text_and_no_file_link(outputs, store, ctx):
    description, body = await card(outputs, store, ctx, MediaLinks())
    for art in outputs.values():
        path = store.local_path(store.key_for(art.storage_url))
        assert f"`{path}`" in description.splitlines()[0] and f"`{path}`" in body
    assert "file://" not in description + body
    assert "](" not in re.sub(r"!\[[^]]*\]\(data:[^)]*\)", "", description)  # no links but the inline images
    assert "<video" not in description + body and "<audio" not in description + body


async def test_step_cards_keep_their_links_in_the_table_below_the_images(outputs, store, ctx):
    shown = [
        (name, await make_preview(name, art, store, ctx, still, MediaLinks(BASE))) for name, art in outputs.items()
    ]
    description, _ = card_markdown("Step outputs of `test`", shown, "step · generator")
    first_line, table = description.split("\n", 1)
    assert "/objects/" not in first_line and "<video" not in description
    assert all(f"{BASE}/objects/{art.sha256}" in table for art in outputs.values())


async def test_a_pipe_in_a_path_does_not_break_the_table(tmp_path, ctx):
    from generators.context import GeneratorContext
    from generators.storage import LocalStore

    odd = LocalStore(tmp_path / "a|b")
    async with GeneratorContext(odd) as octx:
        art = await stored(odd, TextArtifact, "txt", content="hi")
        preview = await make_preview("note", art, odd, octx, links=MediaLinks())
    assert "a\\|b" in preview.details() and "a|b" not in preview.details()


async def test_the_announced_url_is_read_from_the_prefect_variable(prefect_api):
    from prefect.variables import Variable

    await Variable.aunset(MEDIA_URL_VARIABLE)
    assert await MediaLinks.announced() == MediaLinks()
    await Variable.aset(MEDIA_URL_VARIABLE, f"{BASE}/", overwrite=True)
    try:
        assert await MediaLinks.announced() == MediaLinks(BASE)
    finally:
        await Variable.aunset(MEDIA_URL_VARIABLE)
