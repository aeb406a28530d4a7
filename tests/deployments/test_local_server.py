"""`boardflow server`'s environment and the pipeline deployment's run names (no server is started here)."""

from __future__ import annotations

import pytest

from deployments.local_server import PrefectServer
from deployments.pipelines import run_name


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_server_on_every_interface_tells_the_ui_a_relative_api(tmp_path, monkeypatch, host):
    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    env = PrefectServer(tmp_path, host=host, port=4200).server_env()
    assert env["PREFECT_UI_API_URL"] == "/api"  # not http://0.0.0.0:4200/api, unreachable from other machines
    assert env["PREFECT_SERVER_API_HOST"] == host


def test_a_loopback_server_and_a_users_own_ui_api_url_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    assert "PREFECT_UI_API_URL" not in PrefectServer(tmp_path, port=4200).server_env()
    monkeypatch.setenv("PREFECT_UI_API_URL", "https://prefect.studio.example/api")
    env = PrefectServer(tmp_path, host="0.0.0.0", port=4200).server_env()
    assert env["PREFECT_UI_API_URL"] == "https://prefect.studio.example/api"


def test_a_pipeline_run_keeps_the_name_its_caller_gave_and_is_named_after_its_pipeline_otherwise():
    assert run_name("slideshow · row 3", "slideshow") == "slideshow · row 3"
    assert run_name("crafty-heron", "slideshow") == "slideshow"  # Prefect's own name for an unnamed run
    assert run_name(None, None) == "pipeline"
