"""Session fixtures shared across test folders: a throwaway PostgreSQL cluster and an `mlflow
server` backed by it on loopback (tests/helpers/servers.py). They start only when a test asks
for them; missing PostgreSQL binaries fail those tests (CI must run them), never skip them."""

import pytest


@pytest.fixture(scope="session")
def postgres():
    from tests.helpers.servers import Postgres

    try:
        cluster = Postgres().start()
    except RuntimeError as err:
        pytest.fail(str(err), pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def tracking_server(postgres, tmp_path_factory):
    """``mlflow server`` on PostgreSQL with proxied artifacts; a test that kills it starts it again."""
    from tests.helpers.servers import MlflowServer

    server = MlflowServer(postgres.uri(), tmp_path_factory.mktemp("mlflow-server") / "artifacts").start()
    yield server
    server.kill()
