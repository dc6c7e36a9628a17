"""Quiet by default: no TensorFlow, absl, CUDA or oneDNN start-up lines in any command's output,
no retracing warnings; --verbose brings TensorFlow's own lines back."""

import os
import re
import subprocess
import sys

from conftest import run_cli

FOREIGN = re.compile(r"^[IWEF]\d{4} |tensorflow|absl|cuda|oneDNN|retracing|cpu_feature_guard|WARNING", re.I)


def test_generators_and_help_print_only_our_lines():
    listed = run_cli("generators")
    assert listed.returncode == 0 and listed.stderr == ""
    helped = run_cli("attack", "--help")
    assert helped.returncode == 0 and helped.stderr == ""
    assert "--model" in helped.stdout and not FOREIGN.search(helped.stdout)


def test_a_full_attack_and_sweep_print_only_our_lines(tmp_path, tiny_model_path):
    attack = run_cli(
        "attack",
        "--model",
        tiny_model_path,
        "--style",
        "clean",
        "--count",
        "300",
        "--workers",
        "2",
        "--out",
        tmp_path / "r",
    )
    assert attack.returncode == 0, attack.stderr
    lines = attack.stderr.strip().splitlines()
    assert lines[0].startswith("attacking") and "CAPTCHA accuracy" in lines[-1], attack.stderr
    assert not [line for line in lines if FOREIGN.search(line)], attack.stderr
    # a sweep attacks several times with one model: no tf.function retracing warnings
    sweep = run_cli(
        "sweep",
        "--model",
        tiny_model_path,
        "--style",
        "clean",
        "--strength",
        "0:1:6",
        "--count",
        "20",
        "--workers",
        "0",
        "--out",
        tmp_path / "s",
    )
    assert sweep.returncode == 0, sweep.stderr
    assert not [line for line in sweep.stderr.splitlines() if FOREIGN.search(line)], sweep.stderr


def test_verbose_brings_tensorflow_back(tmp_path, tiny_model_path):
    result = run_cli(
        "--verbose",
        "attack",
        "--model",
        tiny_model_path,
        "--style",
        "clean",
        "--count",
        "5",
        "--workers",
        "0",
        "--out",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"oneDNN|cuda|cpu_feature_guard|TensorFlow", result.stderr, re.I), result.stderr


def test_oneDNN_kernels_are_on_unless_the_user_turned_them_off(tmp_path):
    # TensorFlow leaves them off on AVX2-only CPUs, where they train and read 1.3-1.7x faster
    probe = (
        "import captchalab.model, tensorflow\n"
        "from tensorflow.python.util import _pywrap_util_port as port\n"
        "print(port.IsMklEnabled())"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    for setting, expected in ((None, "True"), ("0", "False")):
        run_env = env if setting is None else {**env, "TF_ENABLE_ONEDNN_OPTS": setting}
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env={**run_env, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=True,
        )
        assert out.stdout.strip().splitlines()[-1] == expected, (setting, out.stdout)
