"""`prefect deploy --all` makes what prefect.yaml says, and `boardflow serve` builds the very same deployments."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema

from deployments.local_server import wait_until
from deployments.serve import deployment_specs, runner_deployments
from tests.deployments.kit import POOL, ROOT

pytestmark = pytest.mark.slow


def read_deployment(api_url: str, flow_name: str, name: str) -> dict:
    response = httpx.get(f"{api_url}/deployments/name/{flow_name}/{name}", timeout=30)
    response.raise_for_status()
    return response.json()


def test_deploy_all_matches_prefect_yaml_and_serve(deployed, prefect_server):
    specs = {s["name"]: s for s in deployment_specs()}
    served = {d.name: d for d in runner_deployments()}
    assert set(served) == set(specs) >= {"storyboard", "nightly", "pipeline"}

    for name, spec in specs.items():
        made = read_deployment(prefect_server.api_url, served[name].flow_name, name)
        runner = served[name]
        assert made["work_pool_name"] == POOL
        # Flow runs start in this clone, wherever it was cloned: the path was noted at deploy time.
        assert made["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        assert made["entrypoint"] == spec["entrypoint"]
        assert made["tags"] == spec["tags"] == runner.tags
        assert made["parameters"] == (spec.get("parameters") or {}) == runner.parameters
        wanted = [(s["cron"], s["timezone"], s.get("active", True)) for s in spec.get("schedules") or []]
        on_server = [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in made["schedules"]]
        in_serve = [(s.schedule.cron, s.schedule.timezone, s.active) for s in runner.schedules or []]
        assert on_server == wanted == in_serve, name
        limit = spec.get("concurrency_limit")
        if isinstance(limit, dict):
            assert made["global_concurrency_limit"]["limit"] == limit["limit"] == runner.concurrency_limit
            assert made["concurrency_options"]["collision_strategy"] == limit["collision_strategy"]
            assert runner.concurrency_options.collision_strategy.value == limit["collision_strategy"]

    # The nightly batch's parameters point at files of the project, and its runs are booked at 02:00 London.
    nightly = specs["nightly"]["parameters"]
    assert (ROOT / nightly["rows"]).is_file() and (ROOT / "pipelines" / f"{nightly['spec']}.yaml").is_file()
    nightly_id = read_deployment(prefect_server.api_url, served["nightly"].flow_name, "nightly")["id"]

    def booked() -> list[dict]:
        body = {"flow_runs": {"deployment_id": {"any_": [nightly_id]}, "state": {"type": {"any_": ["SCHEDULED"]}}}}
        return httpx.post(f"{prefect_server.api_url}/flow_runs/filter", json=body, timeout=30).json()

    runs = wait_until(booked, 90, "the scheduler booking nightly runs")
    london = ZoneInfo("Europe/London")
    for run in runs:
        start = datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00")).astimezone(london)
        assert (start.hour, start.minute) == (2, 0), run["expected_start_time"]
        assert run["parameters"] == nightly
    # Schedules proven: pause the nightly so no later test here (nor one running across 02:00 London)
    # finds the pool's workers busy with a real nightly batch. Pausing deletes the booked runs.
    httpx.post(f"{prefect_server.api_url}/deployments/{nightly_id}/pause_deployment", timeout=30).raise_for_status()
    assert wait_until(lambda: not booked() or None, 30, "the paused nightly dropping its booked runs") is True


def test_every_deployment_parameter_has_a_description_for_the_run_form(deployed, prefect_server):
    """The run form shows each parameter's description: Prefect reads them from the flow's "Args:" docstring."""
    served = {d.name: d for d in runner_deployments()}
    for name, runner in served.items():
        schema = read_deployment(prefect_server.api_url, runner.flow_name, name)["parameter_openapi_schema"]
        properties = schema["properties"]
        assert properties, f"{name}: no parameters in the schema"
        missing = sorted(p for p, field in properties.items() if len(field.get("description") or "") < 10)
        assert not missing, f"{name}: parameters without a description in the run form: {missing}"
        # `boardflow serve` builds its deployments from the flow objects: the same descriptions.
        from_flow = parameter_schema(load_flow_from_entrypoint(str(ROOT / runner.entrypoint))).properties
        assert {p: f.get("description") for p, f in from_flow.items()} == {
            p: f.get("description") for p, f in properties.items()
        }, name
