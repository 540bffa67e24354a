"""Run the HIL suite on a rig: pytest with the citygate_hil plugin's --rig, JUnit XML, and a short HTML summary.

    python -m hil_tests.run --rig hil_tests/rigs/emulated.toml [--junit out.xml] [--suite tests/hil] [-- -k calls]

`citygate hil run` calls this. The exit code is pytest's (0 all passed or skipped, 1 failures, 2-5 errors).
"""

from __future__ import annotations

import argparse
import html
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from hil_tests.rig import config as rigfile

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "hil"
MESSAGE_MAX = 300  # characters of a failure or skip message in the summary


def results(junit: Path) -> list[dict]:
    """One dict per test case of a JUnit XML file: name, outcome (passed|failed|error|skipped), time, message."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                if node.get("type") == "pytest.xfail":
                    outcome = "xfailed"  # expected to fail (pytest's xfail), written as a skip in JUnit
                text = (node.text or "").strip().splitlines()
                message = node.get("message") or (text[-1] if text else "")
                break
        out.append({"name": f"{case.get('classname', '')}::{case.get('name', '')}", "outcome": outcome,
                    "time": float(case.get("time") or 0), "message": (message or "")[:MESSAGE_MAX]})
    return out


def summary_html(rig: rigfile.RigConfig, cases: list[dict]) -> str:
    counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped", "xfailed")}
    total = sum(c["time"] for c in cases)
    head = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests"
    rows = "".join(
        f"<tr class={c['outcome']}><td>{html.escape(c['name'])}</td><td>{c['outcome']}</td>"
        f"<td>{c['time']:.1f}</td><td>{html.escape(c['message'])}</td></tr>" for c in cases)
    return f"""<!doctype html><meta charset=utf-8><title>HIL on {html.escape(rig.name)}: {head}</title>
<style>body{{font:14px sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left;vertical-align:top}}
.failed,.error{{background:#fdd}}.skipped,.xfailed{{color:#777}}</style>
<h1>HIL suite on rig {html.escape(rig.name)} ({rig.kind})</h1>
<p>{head} in {total:.1f} s. Board {html.escape(rig.board.id)}, profile {html.escape(rig.board.profile)};
features: {html.escape(", ".join(sorted(rig.features)))}. Rig file: {html.escape(str(rig.path))}.</p>
<table><tr><th>test</th><th>outcome</th><th>s</th><th>message</th></tr>{rows}</table>
"""


def run(rig: Path, junit: Path | None = None, suite: Path = SUITE, extra: tuple[str, ...] = ()) -> int:
    import pytest

    cfg = rigfile.load(rig)  # a bad rig file stops here, naming its key
    if not suite.exists():
        raise SystemExit(f"no HIL suite at {suite} (run from a source checkout, or give --suite)")
    junit = junit or Path(tempfile.mkdtemp(prefix="citygate-hil-")) / "junit.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    code = int(pytest.main([str(suite), "--rig", str(rig), f"--junitxml={junit}", "-p", "no:cacheprovider",
                            "-rs", "-o", "junit_family=xunit2",
                            # this runner imported hil_tests before pytest could rewrite its asserts: no matter
                            "-W", "ignore::pytest.PytestAssertRewriteWarning", *extra]))
    if junit.exists():
        cases = results(junit)
        page = junit.with_suffix(".html")
        page.write_text(summary_html(cfg, cases))
        print(f"HIL on {cfg.name}: JUnit XML {junit}, summary {page}")
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hil_tests.run", description=__doc__.split("\n")[0])
    p.add_argument("--rig", type=Path, default=rigfile.DEFAULT, help="the rig file (TOML)")
    p.add_argument("--junit", type=Path, help="where the JUnit XML goes (the HTML summary beside it, .html)")
    p.add_argument("--suite", type=Path, default=SUITE, help="the scenarios to run (default tests/hil)")
    p.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    a = p.parse_args(argv)
    try:
        return run(a.rig, a.junit, a.suite, tuple(a.pytest_args))
    except rigfile.RigConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
