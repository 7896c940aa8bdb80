import subprocess
import sys

import pytest

PURE = "import k24_rllib.sparsity, k24_rllib.models, k24_rllib.training\n"
NO_RAY = "assert not any(name == 'ray' or name.startswith('ray.') for name in sys.modules), 'ray was imported'\n"


def run(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_pure_torch_layers_import_without_ray():
    """The pure-torch core must work where Ray is absent (``import ray`` blocked in a fresh interpreter)."""
    run("import sys; sys.modules['ray'] = None\n" + PURE + "sys.modules.pop('ray')\n" + NO_RAY)


def test_the_pure_torch_layers_load_no_ray_where_ray_is_installed():
    """Tune registration waits for the RLlib layer: importing the maths never pays Ray's import."""
    pytest.importorskip("ray")
    run("import sys\n" + PURE + NO_RAY)


def test_the_rllib_layer_registers_with_tune_on_first_use():
    pytest.importorskip("ray")
    run("import sys\nfrom k24_rllib import K24QMixConfig\nfrom ray.tune.registry import _global_registry, "
        "TRAINABLE_CLASS, ENV_CREATOR\nassert _global_registry.contains(TRAINABLE_CLASS, 'K24QMix')\n"
        "assert _global_registry.contains(ENV_CREATOR, 'smac')\n")
