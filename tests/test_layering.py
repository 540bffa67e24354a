"""The product does not import test code: controller/ and emulator/ never import hil_tests or tests."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_CODE = ("hil_tests", "tests")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):  # function-level imports too
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_controller_and_the_emulator_import_no_test_code():
    offenders = [f"{path.relative_to(REPO)}: {name}"
                 for part in ("controller", "emulator") for path in sorted((REPO / part).rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in TEST_CODE]
    assert offenders == []
