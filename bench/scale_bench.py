"""Bench: the controller past one machine, on Mosquitto and PostgreSQL, every figure from this run.

1. rollout: --gateways (10,000) simulated gateways connected to Mosquitto (bench/fleet.py, 100 to a
   client, each checking its table's signature and acking it) and a rollout to all of them until every
   one acked (`rollout_10k_s`: from start_rollout, which compiles and checks every table first; target
   <= 60 s), bounded by --rollout-timeout;
2. ingest: records/s stored and acked by 1 and by 2 controller ingest processes (a Bridge each, in
   processes of their own, sharing `$share/citygate/...`) beside a bare subscriber that only receives
   and decodes, measured alternately on the same broker; with the CPU seconds each part used
   (controllers with their writers, Mosquitto, PostgreSQL, the simulated fleet);
3. report: the call report (controller.services.reports, what `/reports/calls` answers) over one year of
   hourly aggregates for --report-gateways (1,000) gateways, 8.76 M rows of call_hours and the daily and
   monthly sums their triggers keep (target <= 200 ms): by city and by gateway per month over the whole
   year, over the year less a few hours at each edge, one day by hour; on PostgreSQL, or on a SQLite file
   with --report-sqlite (bench/report_bench.py; --report-keep keeps the seeded year for the next run).

The last line is `key=value` pairs; a part that missed its bound prints `none` with the reason above it.

    python bench/scale_bench.py [--gateways 10000] [--records 100000] [--parts rollout,ingest,report]
        [--report-sqlite] [--report-keep] [--report-runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from controller_bench import FleetProc, bare_ingest, fresh_db, rollout, seed_region  # noqa: E402
from sqlalchemy import text  # noqa: E402

from controller.brokers import Mosquitto  # noqa: E402
from controller.service import SHARE_GROUP, tune_interpreter  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pids) -> float:
    """CPU seconds (user + system) used so far by these processes and their children."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += sum(int(f) for f in fields[11:15]) / HZ  # utime, stime, cutime, cstime
    return total


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores; /proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / HZ  # less idle and iowait


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (others' sessions too: see the note printed)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == "postgres":
                    out.append(int(p.name))
            except OSError:
                pass
    return out


# ---------------------------------------------------------------- one ingest process (a child of the bench)


def ingest_child(db_url: str, broker_url: str, name: str) -> int:
    """A controller's ingest part alone: a Bridge sharing the group's messages, until `quit` on stdin."""
    from controller.db import Database
    from controller.ingest.bridge import Bridge

    tune_interpreter()
    bridge = Bridge(Database(db_url), broker_url, client_id=f"bench-{name}-{os.urandom(3).hex()}",
                    share_group=SHARE_GROUP).start()
    print("ready" if bridge.connected.is_set() else "not-connected", flush=True)
    try:
        sys.stdin.readline()
    finally:
        bridge.stop()
    print(f"records={bridge.stats['records']} duplicates={bridge.stats['duplicates']}", flush=True)
    return 0


class IngestProcs:
    def __init__(self, n: int, db_url: str, broker_url: str):
        self.procs = [subprocess.Popen([sys.executable, __file__, "--child", db_url, broker_url, f"p{i}"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(n)]
        for p in self.procs:
            if p.stdout.readline().strip() != "ready":
                self.close()
                raise RuntimeError("an ingest process did not connect")

    def pids(self) -> list[int]:
        return [pid for p in self.procs for pid in (p.pid, *children(p.pid))]

    def close(self) -> list[str]:
        said = []
        for p in self.procs:
            try:
                p.stdin.write("quit\n")
                p.stdin.close()
                said.append(p.stdout.read().strip())
                p.wait(60)
            except (OSError, subprocess.TimeoutExpired):
                p.kill()
                p.wait()
        return said


def shared_ingest(broker: Mosquitto, n_procs: int, db, gws: int, per_gw: int, timeout: float) -> tuple[float, dict]:
    """Records/s stored and acked (the marks' sum) by n ingest processes; CPU seconds per part."""
    total = gws * per_gw
    procs = IngestProcs(n_procs, db.url, broker.url)
    marks = text("SELECT coalesce(sum(acked_seq), 0) FROM store_marks")
    try:
        with FleetProc(broker.port, gws, "publish", per_gw) as fleet, db.engine.connect() as conn:
            parts = {"controllers": procs.pids, "mosquitto": lambda: [broker.proc.pid],
                     "postgres": postgres_pids, "fleet": lambda: [fleet.proc.pid]}
            before = {k: cpu_s(f()) for k, f in parts.items()}
            busy = machine_busy_s()
            t0 = time.monotonic()
            fleet.go()
            stored = 0
            while stored < total and time.monotonic() - t0 < timeout:
                time.sleep(0.05)
                stored = conn.execute(marks).scalar()
                conn.rollback()
            elapsed = time.monotonic() - t0
            used = {k: round(cpu_s(f()) - before[k], 1) for k, f in parts.items()}
            # what else ran meanwhile (other work on this machine, the bench itself): the figure's noise
            used["other"] = round(machine_busy_s() - busy - sum(used.values()), 1)
    finally:
        said = procs.close()
    if stored < total:
        raise RuntimeError(f"{n_procs} process(es) stored and acked {stored} of {total} records in {timeout:.0f} s")
    print(f"    {n_procs} process(es): {total / elapsed:,.0f}/s; CPU s {used} in {elapsed:.1f} s; {said}", flush=True)
    return total / elapsed, used


def ingest_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    gws, per_gw = max(1, args.records // 500), 500
    rates: dict[str, list[float]] = {"bare": [], "one": [], "two": []}
    cpu = {}
    for i in range(args.rounds):
        rates["bare"].append(bare_ingest(broker.port, gws, per_gw))
        for key, n in (("one", 1), ("two", 2)):
            with fresh_db(args.database, tmp, f"scale{key}{i}") as db:
                rate, cpu[key] = shared_ingest(broker, n, db, gws, per_gw, args.ingest_timeout)
                rates[key].append(rate)
        print(f"  ingest round {i + 1}: bare {rates['bare'][-1]:,.0f}/s, 1 process {rates['one'][-1]:,.0f}/s, "
              f"2 processes {rates['two'][-1]:,.0f}/s", flush=True)
    m = {k: statistics.median(v) for k, v in rates.items()}
    print(f"ingest on PostgreSQL ({args.records:,} records, {gws} gateways): 1 process {m['one']:,.0f}/s "
          f"({m['one'] / m['bare']:.2f} of bare), 2 processes {m['two']:,.0f}/s ({m['two'] / m['bare']:.2f}), "
          f"bare subscriber {m['bare']:,.0f}/s; medians of {args.rounds}; {os.cpu_count()} cores here; CPU seconds "
          f"of the last round, 2 processes: {cpu['two']} (postgres counts every session on this machine)", flush=True)
    return {"ingest_1proc_per_s": f"{m['one']:.0f}", "ingest_2proc_per_s": f"{m['two']:.0f}",
            "bare_ingest_per_s": f"{m['bare']:.0f}", "ingest_1proc_ratio": f"{m['one'] / m['bare']:.2f}",
            "ingest_2proc_ratio": f"{m['two'] / m['bare']:.2f}", "cpus": str(os.cpu_count())}


# ---------------------------------------------------------------- rollout to 10,000


def rollout_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    from controller.ingest import bridge as bridge_module  # noqa: F401  (imported before the clock starts)

    with fresh_db(args.database, tmp, "rollout") as db:
        t0 = time.monotonic()
        t_compile = seed_region(db, args.gateways)
        print(f"  seeded {args.gateways} gateways, compiled in {t_compile:.1f} s "
              f"({time.monotonic() - t0:.1f} s with seeding)", flush=True)
        tune_interpreter()
        with FleetProc(broker.port, args.gateways, "ack", timeout=args.rollout_timeout + 300):
            try:
                total, wire = rollout(broker.port, db, timeout=args.rollout_timeout)
            except RuntimeError as e:
                print(f"rollout to {args.gateways}: {e}", flush=True)
                return {"rollout_gateways": str(args.gateways), "rollout_10k_s": "none"}
    print(f"rollout to {args.gateways} gateways: {total:.1f} s from start_rollout until every one acked "
          f"({wire:.1f} s from the first table published; target <= 60 s)", flush=True)
    return {"rollout_gateways": str(args.gateways), "rollout_10k_s": f"{total:.1f}",
            "rollout_wire_s": f"{wire:.1f}", "compile_s": f"{t_compile:.1f}"}


# ---------------------------------------------------------------- report over a year of aggregates


def report_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    """The call report over a year of hourly rows: bench/report_bench.py (seeding, reports, figures), on
    PostgreSQL or with --report-sqlite on a SQLite file; --report-keep keeps the seeded year for the next run."""
    from report_bench import run

    argv = ["--gateways", str(args.report_gateways), "--database", args.database, "--runs", str(args.report_runs)]
    if args.report_sqlite:
        name = f"citygate-report-{args.report_gateways}.db"
        argv += ["--sqlite", str(Path(tempfile.gettempdir()) / name if args.report_keep else tmp / name)]
    return run(argv + (["--keep"] if args.report_keep else []))


PARTS = {"rollout": rollout_part, "ingest": ingest_part, "report": report_part}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return ingest_child(*sys.argv[2:5])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=10000)
    ap.add_argument("--rollout-timeout", type=float, default=300)
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--ingest-timeout", type=float, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--report-gateways", type=int, default=1000)
    ap.add_argument("--report-sqlite", action="store_true", help="the report part on a SQLite file")
    ap.add_argument("--report-keep", action="store_true", help="keep the report's seeded year and reuse a kept one")
    ap.add_argument("--report-runs", type=int, default=5, help="each report's median of this many runs")
    ap.add_argument("--database", default=PG, help="PostgreSQL URL (each part gets a fresh schema)")
    ap.add_argument("--parts", default=",".join(PARTS))
    args = ap.parse_args()
    tune_interpreter()
    tmp = Path(tempfile.mkdtemp(prefix="citygate-scale-"))
    figures: dict[str, str] = {}
    with Mosquitto(persistence=True, conf_extra="max_queued_messages 0\nmax_inflight_messages 0\n") as broker:
        for name in args.parts.split(","):
            try:
                figures.update(PARTS[name](broker, args, tmp))
            except RuntimeError as e:
                print(f"{name}: {e}", flush=True)
                figures[f"{name}_error"] = "1"
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
