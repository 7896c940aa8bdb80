import subprocess
import sys


def test_sparsity_and_models_import_without_ray():
    """The pure-torch core must work where Ray is absent (``import ray`` blocked in a fresh interpreter)."""
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import k24_rllib.sparsity, k24_rllib.models\n"
        "assert not any(name == 'ray' or name.startswith('ray.') for name, mod in sys.modules.items() if mod)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
