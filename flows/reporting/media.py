"""Where a person opens a stored file from the Prefect UI: the announced media server, else its path as text."""

from __future__ import annotations

import html
from dataclasses import dataclass

from generators.artifacts import Artifact, AudioArtifact, VideoArtifact
from generators.storage import ArtifactStore

# A Prefect Variable, so runs in any process (CLI, worker, `boardflow serve`) find it through the API they use.
# Names: lowercase letters, digits, underscores or dashes, at most 255 characters
# (https://docs.prefect.io/v3/concepts/variables, checked 2026-12-03).
MEDIA_URL_VARIABLE = "boardflow_media_url"


@dataclass(frozen=True)
class MediaLinks:
    """Markdown for where each artifact lives: a link to the media server at `base`, or plain copyable text.

    A file:// link is never written: browsers will not follow one from an http page, and V2 drops it.
    """

    base: str | None = None

    @classmethod
    async def announced(cls) -> MediaLinks:
        """The links for this run: read once per run, from the Prefect API the run reports to."""
        from prefect.variables import Variable

        try:
            value = await Variable.aget(MEDIA_URL_VARIABLE, default=None)
        except Exception:  # an API that cannot answer costs the links, never the run
            return cls()
        ok = isinstance(value, str) and value.startswith(("http://", "https://"))
        return cls(value.rstrip("/") if ok else None)

    def url(self, artifact: Artifact) -> str | None:
        return f"{self.base}/objects/{artifact.sha256}" if self.base else None

    def where(self, artifact: Artifact, store: ArtifactStore) -> str:
        """The file's full path (or store URL) as text, linked to where a browser can open it."""
        key = store.key_for(artifact.storage_url)
        local = store.local_path(key) if key else None
        shown = str(local) if local else store.url_for(key) if key else artifact.storage_url
        if (url := self.url(artifact)) and key:
            return f"[{link_text(shown)}]({url})"
        if key and local is None:  # S3 without a media server: a presigned URL still opens it, for a week
            return f"[{link_text(shown)}]({store.browser_url(key)})"
        if artifact.storage_url.startswith(("http://", "https://")):
            return f"[{link_text(shown)}]({artifact.storage_url})"
        return "`" + shown.replace("`", "'").replace("|", "\\|") + "`"  # a code span: copied as it is

    def player(self, artifact: Artifact) -> str:
        """A playable <video>/<audio> element (raw HTML: the V1 UI renders it, V2 leaves it out), or ""."""
        if not (url := self.url(artifact)):
            return ""
        src = html.escape(url, quote=True)
        if isinstance(artifact, VideoArtifact):
            return f'<video controls preload="metadata" width="320" src="{src}"></video>'
        if isinstance(artifact, AudioArtifact):
            return f'<audio controls preload="metadata" src="{src}"></audio>'
        return ""


def link_text(text: str) -> str:
    """`text` as a link's text in both UIs: brackets and pipes (table cells) escaped, nothing else.

    In Chromium against Prefect 3.9.1 (2026-12-03), V1 shows a code span inside a link with its backticks
    and keeps `\\_` / `\\*` as typed, while both honour `\\[`, `\\]` and `\\|`.
    """
    return text.replace("[", "\\[").replace("]", "\\]").replace("|", "\\|")
