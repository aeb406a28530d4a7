"""The flagship, as `boardflow run storyboard` runs it: one MP4 with picture and sound of the expected length."""

from __future__ import annotations

import av
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from flows.events import Event, StepDone, subscribe

FPS = 24
SCENES = [
    {"prompt": "a red sunset over a calm sea", "narration": "The sun goes down.", "motion": "zoom-in"},
    {"prompt": "green hills under a blue noon sky", "narration": "Then come the hills.", "motion": "pan-left"},
]


def decode(path) -> dict:
    """What a viewer would notice: frame size, how long picture and sound last, and that neither is blank."""
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio, "picture and sound expected"
        frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        container.seek(0)
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        rate = container.streams.audio[0].sample_rate
        channels = container.streams.audio[0].channels
    return {
        "size": (frames[0].shape[1], frames[0].shape[0]),
        "video_seconds": len(frames) / FPS,
        "audio_seconds": len(audio) / channels / rate,
        "brightness": float(np.mean([f.mean() for f in frames])),
        "audio_rms": float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))),
    }


@pytest.mark.slow
def test_storyboard_makes_one_narrated_scored_video(prefect_api, data_dir, registry, tmp_path):
    narrated: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, StepDone) and event.label.startswith("narrated["):
            narrated[event.label] = event.result.primary.duration

    with subscribe(on_event):
        result = CliRunner().invoke(
            app,
            ["run", "storyboard", "-p", f"scenes={yaml.safe_dump(SCENES)}", "-p", "resolution=640x360"]
            + ["-p", f"fps={FPS}", "--out", str(tmp_path / "out")],
            env={"COLUMNS": "200"},
        )
    assert result.exit_code == 0, result.output
    video = tmp_path / "out" / "storyboard.mp4"
    assert video.exists(), result.output

    got = decode(video)
    assert got["size"] == (640, 360)
    assert len(narrated) == 2
    expected = sum(narrated.values()) - 0.5  # two clips overlap by the 0.5 s fade between them
    assert abs(got["video_seconds"] - expected) <= 1 / FPS + 1e-6, (got, narrated)
    assert abs(got["audio_seconds"] - got["video_seconds"]) <= 0.1, got
    assert got["brightness"] > 20, "the picture is black"
    assert got["audio_rms"] > 0.01, "the sound is silent"
    assert "Cost tally" in result.output and "final" in result.output


def test_the_storyboard_form_describes_its_params_as_the_pipeline_does():
    """The deployment's run form takes its descriptions from the flow's docstring; they say what the YAML says."""
    import inspect

    from prefect.utilities.callables import parameter_docstrings

    from flows.storyboard import load_spec, storyboard

    described = {k: " ".join(v.split()) for k, v in parameter_docstrings(inspect.getdoc(storyboard.fn)).items()}
    params = load_spec().params
    assert set(params) <= set(described)
    assert {name: described[name] for name in params} == {name: p.description for name, p in params.items()}
