"""Leak guard: threads and child processes a test leaves running, reported at the end of the session.

A thread or process that outlives its test slows every later test on a small CI machine and makes
"passes alone, fails in the suite" flakes. After each test's teardown this plugin waits (up to
LEAK_DEADLINE_S, on the threads themselves and on /proc) for what the test started to go; what is
still alive then is noted. What a wider-scoped fixture starts (module, package, session) is that
fixture's, checked when it is finalized. A thread or process counts whatever its daemon flag: a
daemon thread still runs, and costs, until the process ends.

Processes are found without psutil, in /proc: this process's descendants, plus orphans (re-parented to
init) that carry this session's marker in their environment, and theirs.

    --leakguard=report   (default) a summary at the end of the session; the run's outcome is unchanged
    --leakguard=fail     the session fails if anything leaked
    --leakguard=off
    --leakguard-json=PATH  also write the findings as JSON
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LEAK_DEADLINE_S = float(os.environ.get("CITYGATE_LEAK_DEADLINE_S", "5"))
MARKER = "CITYGATE_LEAKGUARD"
POLL_S = 0.05
# idle pools that end on their own: AnyIO's worker threads (FastAPI's sync endpoints) exit after 10 s idle
IDLE_POOLS = ("AnyIO worker thread",)


# ---------------------------------------------------------------- what runs now


def _stat(pid: str) -> tuple[int, str, str, int] | None:
    """(ppid, state, comm, start time in ticks) of a process, None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], comm, int(rest[19])


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


def _marked(pid: str, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            with open(f"{task.path}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:  # gone meanwhile
        pass
    return out


def processes(marker: bytes, parents: dict[int, int] | None = None) -> dict[tuple[int, int], str]:
    """{(pid, start time): description} of every live (not zombie) descendant or marked orphan, and theirs.

    Walks /proc/PID/task/*/children from this process and from init's children that carry the marker
    (orphans are re-parented to init): no scan of every process on a busy machine."""
    me = os.getpid()
    todo = [me] + [p for p in _children(1) if _marked(str(p), marker)]
    seen, found = set(), {}
    while todo and len(seen) < 10_000:  # bounded
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        kids = _children(pid)
        todo += kids
        if parents is not None:
            parents.update(dict.fromkeys(kids, pid))
        st = _stat(str(pid))
        if pid != me and st is not None and st[1] != "Z":
            found[(pid, st[3])] = f"pid {pid} {_cmdline(pid) or st[2]}"
    return found


def alive_process(key: tuple[int, int]) -> bool:
    st = _stat(str(key[0]))
    return st is not None and st[3] == key[1] and st[1] != "Z"


def threads() -> dict[int, threading.Thread]:
    return {id(t): t for t in threading.enumerate() if t is not threading.main_thread() and t.name not in IDLE_POOLS}


def describe(t: threading.Thread) -> str:
    target = getattr(t, "_target", None)
    where = getattr(target, "__qualname__", None) or type(t).__qualname__
    return f"thread {t.name!r} ({'daemon' if t.daemon else 'non-daemon'}, {where})"


@dataclass
class Snapshot:
    threads: dict[int, threading.Thread]
    procs: dict[tuple[int, int], str]
    parents: dict[int, int]

    @classmethod
    def take(cls, marker: bytes) -> Snapshot:
        parents: dict[int, int] = {}
        return cls(threads(), processes(marker, parents), parents)


@dataclass
class Owned:
    """What appeared while something ran (a test, or a wider fixture's setup)."""

    threads: dict[int, threading.Thread] = field(default_factory=dict)
    procs: dict[tuple[int, int], str] = field(default_factory=dict)

    def add_new(self, before: Snapshot, after: Snapshot, claimed: set) -> None:
        """What `after` has and `before` had not, but what a wider fixture claimed; a process started by
        a claimed one (a browser's renderer for a page a test opened) is claimed too (added to `claimed`)."""
        for k, t in after.threads.items():
            if k not in before.threads and k not in claimed:
                self.threads[k] = t
        key_of = {k[0]: k for k in after.procs}
        for k, d in after.procs.items():
            if k in before.procs or k in claimed:
                continue
            p, hops = after.parents.get(k[0]), 0
            while p is not None and key_of.get(p) not in claimed and hops < 64:
                p, hops = after.parents.get(p), hops + 1
            if p is not None:
                claimed.add(k)
            else:
                self.procs[k] = d

    def keys(self) -> set:
        return set(self.threads) | set(self.procs)

    def wait_gone(self, deadline_s: float) -> list[Survivor]:
        """Wait until everything owned has ended or the deadline passed; what is still alive."""
        deadline = time.monotonic() + deadline_s
        for t in self.threads.values():
            t.join(max(0.0, deadline - time.monotonic()))
        while any(alive_process(k) for k in self.procs) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return ([Survivor(describe(t), t.is_alive) for t in self.threads.values() if t.is_alive()]
                + [Survivor(d, lambda k=k: alive_process(k)) for k, d in self.procs.items() if alive_process(k)])


@dataclass
class Survivor:
    what: str
    alive: object  # () -> bool
    test: str = ""
    owners: set = field(default_factory=set)  # the wider fixtures alive at its test


# ---------------------------------------------------------------- the plugin


class LeakGuard:
    """A test's survivors are suspects first: what a wider fixture's object starts during a test (a
    module-scoped board that a test power-cycles, whose next boot the next test ends) may be that
    fixture's to end. So a suspect leaked if it is alive once every wider fixture around its test
    is finalized, or, with none around, if it ran on after its test at all."""

    def __init__(self, config):
        self.mode = config.getoption("leakguard")
        self.json_path = config.getoption("leakguard_json")
        token = f"{os.getpid()}-{time.time_ns()}"
        os.environ[MARKER] = token  # inherited by every child that keeps the environment
        self.marker = f"{MARKER}={token}".encode()
        self.fixture_owned: dict[int, tuple[str, Owned]] = {}  # id(fixturedef) -> (name, what its setup started)
        self.claimed: set = set()  # everything a wider fixture's setup started: never a test's
        self.suspects: list[Survivor] = []
        self.active: set[int] = set()  # id() of the wider fixtures set up and not yet finalized
        self.leaks: dict[str, list[str]] = {}  # test or fixture -> what outlived it

    def _leak(self, who: str, what: str) -> None:
        self.leaks.setdefault(who, []).append(what)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):
        if fixturedef.scope == "function":
            yield
            return
        before = Snapshot.take(self.marker)
        yield
        owned = Owned()
        owned.add_new(before, Snapshot.take(self.marker), self.claimed)
        self.claimed |= owned.keys()
        self.active.add(id(fixturedef))
        if owned.keys():
            self.fixture_owned[id(fixturedef)] = (f"fixture {fixturedef.argname} ({fixturedef.scope})", owned)

    def pytest_fixture_post_finalizer(self, fixturedef, request):
        if id(fixturedef) not in self.active:
            return
        self.active.discard(id(fixturedef))
        entry = self.fixture_owned.pop(id(fixturedef), None)
        if entry is not None:
            name, owned = entry
            for s in owned.wait_gone(LEAK_DEADLINE_S):
                self._leak(f"{name} of {request.node.nodeid}", s.what)
        # suspects of the tests that ran while this fixture lived: once no such fixture is left, alive is a leak
        mine = [s for s in self.suspects if id(fixturedef) in s.owners]
        for s in mine:
            s.owners.discard(id(fixturedef))
        last = [s for s in mine if not s.owners]
        deadline = time.monotonic() + LEAK_DEADLINE_S
        while any(s.alive() for s in last) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        for s in last:
            self.suspects.remove(s)
            if s.alive():
                self._leak(s.test, f"{s.what}: outlived the test and the fixtures around it")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        before = Snapshot.take(self.marker)
        yield  # setup, call and teardown (and the finalizers of wider fixtures that end here)
        # ended later, with no wider fixture around: it ran on after its test
        for s in [s for s in self.suspects if not s.owners and not s.alive()]:
            self.suspects.remove(s)
            self._leak(s.test, f"{s.what}: ran on after the test, ended only by the end of {item.nodeid}")
        owned = Owned()
        owned.add_new(before, Snapshot.take(self.marker), self.claimed)
        for s in owned.wait_gone(LEAK_DEADLINE_S):
            s.test, s.owners = item.nodeid, set(self.active)
            self.suspects.append(s)

    @pytest.hookimpl(trylast=True)  # after the session's fixtures are finalized
    def pytest_sessionfinish(self, session):
        for s in self.suspects:
            if s.alive():
                self._leak(s.test, f"{s.what}: still running at the end of the session")
        self.suspects = []
        if self.json_path:
            Path(self.json_path).write_text(json.dumps(self.leaks, indent=1))
        if self.mode == "fail" and self.leaks and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.leaks:
            return
        tr = terminalreporter
        tr.write_sep("=", f"leak guard: {len(self.leaks)} tests or fixtures left threads or processes running "
                          f"past {LEAK_DEADLINE_S:g} s after their teardown")
        for who, what in self.leaks.items():
            tr.write_line(who)
            for line in what[:12]:
                tr.write_line(f"    {line}")
            if len(what) > 12:
                tr.write_line(f"    ... and {len(what) - 12} more")


def pytest_addoption(parser):
    group = parser.getgroup("leakguard")
    group.addoption("--leakguard", choices=("report", "fail", "off"), default="report",
                    help="threads and child processes left running after a test: report (default), fail, off")
    group.addoption("--leakguard-json", default=None, metavar="PATH", help="also write the findings here")


def pytest_configure(config):
    if config.getoption("leakguard") != "off" and Path("/proc/self/stat").exists():
        config.pluginmanager.register(LeakGuard(config), "citygate-leakguard")
