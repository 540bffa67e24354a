"""The README's examples do what it says: its Python example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readmes_python_example_runs_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "EmulatedRig(" in b)
    script = tmp_path / "example.py"
    script.write_text(example)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240,
                          cwd=README.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'status': 'applied'" in proc.stdout, "the table was applied"
    assert "'result': 'answered'" in proc.stdout and "'outcome': 'answered'" in proc.stdout, proc.stdout
