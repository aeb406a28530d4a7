"""One real `prefect server start` for the deployment tests, with prefect.yaml deployed to its process pool."""

from __future__ import annotations

import pytest

from deployments.local_server import PrefectServer
from tests.deployments.kit import POOL, run_cli


@pytest.fixture(scope="package")
def prefect_server(tmp_path_factory) -> PrefectServer:
    with PrefectServer(tmp_path_factory.mktemp("deploy-prefect-home")) as server:
        yield server


@pytest.fixture(scope="package")
def deployed(prefect_server: PrefectServer) -> PrefectServer:
    """prefect.yaml deployed the documented way: create the process pool, then `prefect deploy --all`."""
    run_cli(prefect_server, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    run_cli(prefect_server, "deploy", "--all")
    return prefect_server
