import subprocess
import sys
import time


def test_mage_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "mage.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "env" in out.stdout


def test_no_command_prints_help_and_exits_1():
    out = subprocess.run([sys.executable, "-m", "mage.cli.main"], capture_output=True, text=True)
    assert out.returncode == 1 and "usage" in out.stdout


def test_import_mage_is_light_and_fast():
    code = "import sys, mage; print('torch' in sys.modules)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert out.stdout.strip() == "False"  # no heavy import at package import
    assert elapsed < 5.0  # generous; the real figure is ~0.05 s (no torch import)
