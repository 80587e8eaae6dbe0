"""`mtl models deploy` from a real registry: the TF Serving layout, its config, labels in two steps."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from google.protobuf import text_format

from mtl_tf.cli.main import cli
from tests.serving.fake_serving import RestServer, ServedModels, ServingError
from tests.serving.registered_model import NAME, TASKS

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # the session fixture trains twice (~1 min)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def config_of(root: Path):
    from tensorflow_serving.config import model_server_config_pb2

    text = (root / "models.config").read_text()
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    return {entry.name: entry for entry in config.model_config_list.config}


def registered_outputs(registered, version: int, examples):
    """serving_default of the export the registry holds for ``version``."""
    source = registered.client().get_model_version(NAME, str(version)).source
    outputs = tf.saved_model.load(source).signatures["serving_default"](examples=tf.constant(examples))
    return {k: v.numpy() for k, v in outputs.items()}


def examples_of(registered, n=8):
    from mtl_tf.data.reader import raw_examples
    from mtl_tf.data.spec import DatasetSpec

    return raw_examples(DatasetSpec.read(registered.dataset), "test", n)


def test_deploy_lays_out_the_registry_version_that_saved_model_cli_and_tf_read(registered, tmp_path):
    registered.set_aliases(champion=1, challenger=None)
    root = tmp_path / "deploy"
    result = invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri)
    assert result.exit_code == 0, result.output
    version_dir = root / NAME / "1"
    assert (version_dir / "saved_model.pb").is_file() and (version_dir / "variables" / "variables.index").is_file()
    assert sorted(p.name for p in (root / NAME).iterdir()) == ["1"]
    assert oct(version_dir.stat().st_mode & 0o777) == "0o755"

    cli_tool = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    shown = subprocess.run([cli_tool, "show", "--dir", str(version_dir), "--all"], capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "signature_def['serving_default']" in shown.stdout and "signature_def['predict_fraud']" in shown.stdout
    assert "inputs['examples'] tensor_info:" in shown.stdout
    for task in TASKS:
        assert f"outputs['{task}'] tensor_info:" in shown.stdout

    examples = examples_of(registered)
    loaded = tf.saved_model.load(str(version_dir)).signatures["serving_default"](examples=tf.constant(examples))
    expected = registered_outputs(registered, 1, examples)
    for task in TASKS:
        np.testing.assert_array_equal(loaded[task].numpy(), expected[task])

    config = config_of(root)[NAME]
    assert config.base_path == f"/models/{NAME}" and list(config.model_version_policy.specific.versions) == [1]
    assert dict(config.version_labels) == {}
    assert "stable -> v1" in result.output and f"mtl models deploy --to {root} --finalize" in result.output

    assert invoke("models", "deploy", "--to", root, "--finalize").exit_code == 0
    assert dict(config_of(root)[NAME].version_labels) == {"stable": 1}


def test_a_new_champion_is_served_beside_the_old_one_until_the_label_moves(registered, tmp_path):
    root = tmp_path / "deploy"
    registered.set_aliases(champion=1, challenger=None)
    assert invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri).exit_code == 0
    assert invoke("models", "deploy", "--to", root, "--finalize").exit_code == 0
    server = ServedModels(root / "models.config", mounts={"/models": root})
    assert server.version(NAME, label="stable") == 1

    registered.set_aliases(champion=2)
    result = invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--keep", 1, "--tracking-uri", registered.uri)
    assert result.exit_code == 0, result.output
    config = config_of(root)[NAME]
    assert list(config.model_version_policy.specific.versions) == [1, 2] and dict(config.version_labels) == {"stable": 1}
    assert sorted(p.name for p in (root / NAME).iterdir()) == ["1", "2"]
    server.reload()  # the server's config poll: version 2 loads, stable still answers with 1
    assert server.version(NAME, label="stable") == 1 and sorted(server.loaded[NAME]) == [1, 2]

    result = invoke("models", "deploy", "--to", root, "--finalize", "--keep", 1)
    assert result.exit_code == 0, result.output
    config = config_of(root)[NAME]
    assert list(config.model_version_policy.specific.versions) == [2] and dict(config.version_labels) == {"stable": 2}
    assert sorted(p.name for p in (root / NAME).iterdir()) == ["2"]
    server.reload()
    assert server.version(NAME, label="stable") == 2
    examples = examples_of(registered)
    answered = {k: v.numpy() for k, v in server.signature(NAME, "serving_default", "stable")(
        examples=tf.constant(examples)).items()}
    np.testing.assert_array_equal(answered["fraud"], registered_outputs(registered, 2, examples)["fraud"])


def test_moving_the_label_in_one_step_is_what_tf_serving_refuses(registered, tmp_path):
    """Why two steps: a config reload that labels a version the server has not loaded yet fails."""
    root = tmp_path / "deploy"
    registered.set_aliases(champion=1, challenger=None)
    invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri)
    invoke("models", "deploy", "--to", root, "--finalize")
    server = ServedModels(root / "models.config", mounts={"/models": root})  # serving v1 as stable
    registered.set_aliases(champion=2)
    invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri)
    assert json.loads((root / "deploy.json").read_text())["models"][NAME]["pending"] == {"stable": 2}
    one_step = root / "one_step.config"
    one_step.write_text((root / "models.config").read_text().replace("value: 1", "value: 2"))
    server.config_path = one_step
    with pytest.raises(ServingError, match="version 2 of model tiny_serve, which is not currently available"):
        server.reload()
    server.config_path = root / "models.config"
    server.reload()  # step 1: version 2 loads beside 1
    assert server.version(NAME, label="stable") == 1
    invoke("models", "deploy", "--to", root, "--finalize")
    server.reload()  # step 2: the label moves to the loaded version
    assert server.version(NAME, label="stable") == 2


def test_a_challenger_gets_the_canary_label_and_finalize_checks_the_server_first(registered, tmp_path):
    root = tmp_path / "deploy"
    registered.set_aliases(champion=1, challenger=2)
    invoke("models", "deploy", f"{NAME}@champion", "--to", root, "--tracking-uri", registered.uri)
    invoke("models", "deploy", "--to", root, "--finalize")
    models = ServedModels(root / "models.config", mounts={"/models": root})
    result = invoke("models", "deploy", f"{NAME}@challenger", "--to", root, "--tracking-uri", registered.uri)
    assert result.exit_code == 0 and "canary -> v2" in result.output
    with RestServer(models) as server:
        # The server has not polled the new config yet: version 2 is not loaded, finalize refuses.
        refused = invoke("models", "deploy", "--to", root, "--finalize", "--server", server.address)
        assert refused.exit_code != 0 and "Traceback" not in refused.output
        assert "reports tiny_serve v2 as UNKNOWN, not AVAILABLE" in refused.output
        assert dict(config_of(root)[NAME].version_labels) == {"stable": 1}
        models.reload()
        done = invoke("models", "deploy", "--to", root, "--finalize", "--server", server.address)
        assert done.exit_code == 0, done.output
    assert dict(config_of(root)[NAME].version_labels) == {"stable": 1, "canary": 2}
    models.reload()
    assert models.version(NAME, label="canary") == 2


def test_deploy_mistakes_are_one_line(registered, tmp_path):
    def one_line(result, fragment):
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert result.exit_code != 0 and "Traceback" not in result.output and len(errors) == 1, result.output
        assert fragment in errors[0], result.output

    registered.set_aliases(challenger=None)
    one_line(invoke("models", "deploy", f"{NAME}@challenger", "--to", tmp_path / "d", "--tracking-uri",
                    registered.uri), "has no alias 'challenger'")
    one_line(invoke("models", "deploy", f"{NAME}/9", "--to", tmp_path / "d", "--tracking-uri", registered.uri),
             "has no version 9; existing versions: 1, 2")
    one_line(invoke("models", "deploy", "tiny_serv@champion", "--to", tmp_path / "d", "--tracking-uri",
                    registered.uri), "did you mean 'tiny_serve'")
    one_line(invoke("models", "deploy", NAME, "--to", tmp_path / "d"), "is not one of NAME@ALIAS or NAME/VERSION")
    one_line(invoke("models", "deploy", "--to", tmp_path / "empty", "--finalize"), "holds no deployment")
    one_line(invoke("models", "deploy", "--to", tmp_path / "d"), "name the version to deploy")
