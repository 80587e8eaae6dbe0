"""`mtl` starts without TensorFlow's start-up noise, and still shows real errors."""

import os
import subprocess
import sys
from pathlib import Path

from mtl_tf.cli.quiet import start_up_noise_filtered

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "fraud_signals.yaml"
NOISE = ("cuInit", "cpu_feature_guard", "oneDNN custom operations", "cudart_stub", "absl::InitializeLog")


def _python(*args, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update({"PYTHONPATH": str(ROOT), **env})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=300)


def test_validate_prints_its_line_and_no_tensorflow_start_up_noise():
    done = _python("-m", "mtl_tf.cli.main", "recipes", "validate", str(RECIPE))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{RECIPE}: ok (3 tasks")
    for noise in NOISE:
        assert noise not in done.stderr, done.stderr


def test_importing_the_package_and_the_cli_does_not_import_tensorflow():
    done = _python("-c", "import sys, mtl_tf, mtl_tf.cli.main; print('tensorflow' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


STARTUP = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796119607.517182   12730 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results.
I0000 00:00:1796119607.592361   12730 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
W0000 00:00:1796119607.600000   12730 some_file.cc:10] a warning
E0000 00:00:1796119611.428164   12730 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
E0000 00:00:1796119611.500000   12730 op_kernel.cc:99] Could not open libdevice
To enable the following instructions is not held back after an error
Traceback (most recent call last):
ImportError: something broke"""


def test_start_up_filter_keeps_errors_and_drops_notices():
    kept = start_up_noise_filtered(STARTUP.splitlines(), gpu_present=False)
    assert kept == ["E0000 00:00:1796119611.500000   12730 op_kernel.cc:99] Could not open libdevice",
                    "To enable the following instructions is not held back after an error",
                    "Traceback (most recent call last):", "ImportError: something broke"]


def test_with_a_gpu_a_failed_cuinit_is_a_real_error():
    kept = start_up_noise_filtered(STARTUP.splitlines(), gpu_present=True)
    assert any("failed call to cuInit" in line for line in kept)
