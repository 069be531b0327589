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


def test_importing_the_command_line_loads_no_heavy_library():
    code = "import sys, latentmorph.cli; print(' '.join(sys.modules))"
    result = _python(code)
    assert result.returncode == 0, result.stderr
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert not loaded & {"torch", "numpy", "librosa", "cv2", "diffusers", "gradio"}


def test_a_transition_imports_nothing_of_animations(tmp_path):
    argv = ["transition", "a", "b", "-o", str(tmp_path / "t.gif"), "--model", "tiny-sd"]
    argv += ["--quiet", "--duration", "0.5", "--fps", "4", "--branches", "3", "--steps", "2"]
    argv += ["--width", "32", "--height", "32"]
    code = (
        "import sys\nfrom latentmorph.cli import main\n"
        f"assert main({argv!r}) == 0\nprint(' '.join(sys.modules))"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    modules = result.stdout.splitlines()[-1].split()
    assert (tmp_path / "t.gif").is_file() and "torch" in modules
    assert not [m for m in modules if m.startswith(("librosa", "latentmorph.animation"))]
