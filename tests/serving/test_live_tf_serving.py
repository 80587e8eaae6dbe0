"""Against a real tensorflow_model_server, when one is on PATH (none installs here: no PyPI or
Debian package ships it, so these tests skip unless a machine provides the binary)."""

import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from click.testing import CliRunner

from mtl_tf.cli.main import cli
from mtl_tf.serving.client import version_state
from tests.serving.registered_model import NAME

SERVER = shutil.which("tensorflow_model_server")
pytestmark = [pytest.mark.slow, pytest.mark.integration,
              pytest.mark.skipif(SERVER is None, reason="tensorflow_model_server is not on PATH")]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, seconds=90.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError("TF Serving did not get there in time")


def assert_same_answers(remote, local):
    """Row by row: the same keys, numbers within float32 printing, errors identical."""
    ours = [json.loads(line) for line in local.read_text().splitlines()]
    theirs = [json.loads(line) for line in remote.read_text().splitlines()]
    assert len(ours) == len(theirs)
    for mine, served in zip(ours, theirs):
        assert sorted(mine) == sorted(served)
        for key, value in mine.items():
            assert served[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float) else value)


def label_version(rest: str, label: str) -> str:
    with urllib.request.urlopen(f"http://{rest}/v1/models/{NAME}/labels/{label}", timeout=5) as response:
        return json.loads(response.read())["model_version_status"][0]["version"]


def test_a_real_server_answers_as_the_local_model_and_follows_the_label(registered, tmp_path):
    root = tmp_path / "deploy"
    registered.set_aliases(champion=1, challenger=None)
    assert invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--base-path", root,
                  "--tracking-uri", registered.uri).exit_code == 0
    assert invoke("models", "deploy", "--to", root, "--finalize").exit_code == 0
    grpc_port, rest_port = free_port(), free_port()
    rest = f"127.0.0.1:{rest_port}"
    process = subprocess.Popen([SERVER, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
                                f"--model_config_file={root / 'models.config'}",
                                "--model_config_file_poll_wait_seconds=1"])
    try:
        wait_for(lambda: label_version(rest, "stable") == "1")
        local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
        assert invoke("predict", "--model-uri", f"{NAME}@champion", "--input", registered.csv, "--output", local,
                      "--tracking-uri", registered.uri).exit_code == 0
        for protocol, port in (("rest", rest_port), ("grpc", grpc_port)):
            result = invoke("predict", "--model-uri", f"{NAME}@champion", "--input", registered.csv, "--output",
                            remote, "--server", f"127.0.0.1:{port}", "--protocol", protocol,
                            "--tracking-uri", registered.uri)
            assert result.exit_code == 0, result.output
            assert_same_answers(remote, local)

        registered.set_aliases(champion=2)
        assert invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri,
                      "--keep", 1).exit_code == 0
        wait_for(lambda: version_state(rest, NAME, 2) == "AVAILABLE")
        assert label_version(rest, "stable") == "1"
        assert invoke("models", "deploy", "--to", root, "--finalize", "--server", rest, "--keep", 1).exit_code == 0
        wait_for(lambda: label_version(rest, "stable") == "2")
    finally:
        process.terminate()
        process.wait(timeout=30)
