"""One decoder behaviour on both interpreters (issue 8, finding 11).

A deterministic corpus (tests/vectors/gen/fuzz_corpus.py: mutated valid messages, tables and
envelopes, bodies signed again after mutation, hypothesis-generated values and bytes) goes through
messages.decode (every kind), routing.load and routing.unseal on CPython in this process and on the
real micropython binary (tests/vectors/fuzz_replay.py). No decoder may raise anything but the
contract's error type, none may reach its safety net, and both interpreters must accept the same
inputs and refuse the others at the same path.
"""

import sys
from collections import Counter
from pathlib import Path

import pytest

from emulator import micropython

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
for where in (VECTORS, VECTORS / "gen"):
    if str(where) not in sys.path:
        sys.path.insert(0, str(where))
import fuzz_corpus  # noqa: E402
import fuzz_replay  # noqa: E402

COUNT = 3000


def _verdicts(lines):
    """{(input, op): verdict} from replay lines; the summary line's count."""
    out, total = {}, None
    for line in lines:
        if line.startswith("fuzz: "):
            total = int(line.split()[1])
            continue
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0].isdigit():  # anything else is a crash's traceback
            out[(int(parts[0]), parts[1])] = parts[2]
    return out, total


def compare(cpython, mpy):
    """Counts of foreign exceptions (X) and safety-net errors (U) per interpreter, and disagreements."""
    counts = Counter()
    for verdicts, name in ((cpython, "cpython"), (mpy, "micropython")):
        for v in verdicts.values():
            if v[0] in "XU":
                counts[name + "_foreign"] += 1
    diff = sorted(k for k in cpython if cpython[k] != mpy.get(k))
    counts["disagreements"] = len(diff)
    counts["mpy_only_accepts"] = sum(1 for k in diff if mpy.get(k) == "ok")
    counts["cpython_only_accepts"] = sum(1 for k in diff if cpython[k] == "ok")
    return counts, diff


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "corpus.txt"
    corpus = fuzz_corpus.build(COUNT)
    fuzz_corpus.write(path, corpus)
    return path, corpus


@pytest.mark.micropython
def test_corpus_same_verdicts_and_only_contract_errors_on_both_interpreters(corpus_file):
    path, corpus = corpus_file
    lines = []
    fuzz_replay.replay(path.read_text().split("\n"), lines.append)
    cpython, total = _verdicts(lines)
    assert total == len(corpus) >= COUNT
    result = micropython.run(str(VECTORS / "fuzz_replay.py"), str(path), extra_path=[VECTORS], timeout=300)
    mpy, mtotal = _verdicts(result.stdout.splitlines())
    assert mtotal == total, f"MicroPython stopped early:\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    counts, diff = compare(cpython, mpy)
    examples = [(k, corpus[k[0]][0][:120], cpython[k], mpy.get(k)) for k in diff[:12]]
    foreign = [(k, corpus[k[0]][0][:120], v) for k, v in cpython.items() if v[0] in "XU"][:6]
    foreign += [(k, corpus[k[0]][0][:120], v) for k, v in mpy.items() if v[0] in "XU"][:6]
    print(f"fuzz corpus: {total} inputs, {len(cpython)} decoder calls each side, {dict(counts)}")
    assert counts["cpython_foreign"] == 0 and counts["micropython_foreign"] == 0, foreign
    assert counts["disagreements"] == 0, examples


def test_corpus_is_deterministic_and_mixes_valid_and_invalid(corpus_file):
    _, corpus = corpus_file
    assert fuzz_corpus.build(200) == fuzz_corpus.build(200)
    lines = []
    fuzz_replay.replay([("s " if t else "b ") + d.hex() for d, t in corpus[:600]], lines.append)
    verdicts = Counter(v.split()[0] for v in _verdicts(lines)[0].values())
    assert verdicts["ok"] > 100 and verdicts["E"] > 1000  # the corpus reaches both sides of every decoder
