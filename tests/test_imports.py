"""What importing the package and its command line loads and changes in the process."""

import os
import subprocess
import sys


def _python(code: str) -> subprocess.CompletedProcess:
    """Runs Python code in a fresh process whose environment does not set OMP_WAIT_POLICY."""
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment
    )


def test_importing_the_package_leaves_the_environment_unchanged():
    code = "import os; before = dict(os.environ); import {}; assert dict(os.environ) == before"
    for module in ("latentmorph", "latentmorph.cli"):
        result = _python(code.format(module))
        assert result.returncode == 0, (module, result.stderr)
