"""Bench: the call report (controller.services.reports, what `/reports/calls` answers) over one year of hourly
aggregates for --gateways (1,000) gateways in --cities (50) cities: 8.76 M rows of call_hours and the daily
and monthly sums their triggers keep (target <= 200 ms a report). By city and by gateway per month over the
whole year, by city over the year less a few hours at each edge, one day by gateway and hour; each the
median of --runs; with --api also through the ASGI app (httpx, a viewer's token: JSON as users read it).

Seeding a year takes minutes, so with --keep the seeded database stays (PostgreSQL schema
`bench_report_<gateways>_<order>`, or the --sqlite file) and the next run with --keep reads it again after bringing
it to the latest migration; without --keep a fresh one is seeded and dropped. `--code DIR` imports the
controller from DIR (a `git archive` of an older commit) to time old code on the same data.

    python bench/report_bench.py [--sqlite FILE] [--keep] [--runs 5] [--api] [--code DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = 1767225600  # 2026-01-01T00:00Z
YEAR = 8760 * 3600
SHAPES = {"all_by_city_month": ("city", "month", START, START + YEAR),
          "all_by_gateway_month": ("gateway", "month", START, START + YEAR),
          "edges_by_city_month": ("city", "month", START + 5 * 3600, START + YEAR - 7 * 3600),
          "one_day_by_gateway_hour": ("gateway", "hour", START + 180 * 86400, START + 181 * 86400)}

ORDER = {"hour": {"postgresql": "h, g", "sqlite": "t, n"}, "gateway": {"postgresql": "g, h", "sqlite": "n, t"}}
HOURS_SQL = {  # one route and target per gateway and hour, made by the server itself, stored in ORDER
    "postgresql": "INSERT INTO call_hours (gateway_id, hour, route, target, offered, answered, abandoned, failed, "
                  "rejected, after_hours, callback, denied, talk_s, ring_s) "
                  "SELECT 'gw-' || lpad(g::text, 4, '0'), h, 'police-102', 'mariupol-102', 5, 4, 1, 0, 0, 0, 0, 0, "
                  "240, 20 FROM generate_series(0, :n - 1) g, generate_series(:start, :end - 3600, 3600) h "
                  "ORDER BY {order}",
    "sqlite": "WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < :n - 1), "
              "h(t) AS (SELECT :start UNION ALL SELECT t + 3600 FROM h WHERE t < :end - 3600) "
              "INSERT INTO call_hours (gateway_id, hour, route, target, offered, answered, abandoned, failed, "
              "rejected, after_hours, callback, denied, talk_s, ring_s) "
              "SELECT 'gw-' || printf('%04d', n), t, 'police-102', 'mariupol-102', 5, 4, 1, 0, 0, 0, 0, 0, 240, 20 "
              "FROM g, h ORDER BY {order}",
}


def _database(args):
    """(Database, kind, drop): the kept or a fresh database; drop() removes a fresh one."""
    from sqlalchemy import create_engine, text

    from controller.db import Database

    if args.sqlite:
        path = Path(args.sqlite)
        fresh = not (args.keep and path.exists())
        if fresh and path.exists():
            path.unlink()
        db = Database(f"sqlite:///{path}")

        def forget():
            db.engine.dispose()
            for p in ([] if args.keep else [path, *path.parent.glob(path.name + "-*")]):  # with -wal, -shm
                p.unlink(missing_ok=True)
        return db, "sqlite", fresh, forget
    schema = f"bench_report_{args.gateways}_{args.order}" + ("" if args.keep else f"_{os.getpid()}")
    admin = create_engine(args.database)
    with admin.begin() as c:
        fresh = c.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}).first() is None
        if fresh:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(args.database + ("&" if "?" in args.database else "?") + f"options=-csearch_path%3D{schema}")

    def drop():
        db.engine.dispose()
        if not args.keep:
            with admin.begin() as c:
                c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return db, "postgresql", fresh, drop


def seed(db, kind: str, n: int, cities: int, order: str) -> None:
    """Cities, gateways and a year of hours, stored hour after hour as the ingest writes them (or with
    `order` "gateway" one gateway's year after another: a day's rows then lie in 1,000 places). The hours
    go in before migration 0009, which then fills call_months from them as on an upgraded server (its
    row-level triggers would take many minutes over 8.76 M rows in one statement); call_days by 0008's
    triggers."""
    from sqlalchemy import text

    from controller import migrate
    from controller.models import City, Gateway

    migrate.upgrade(db, "0008")
    t0 = time.monotonic()
    with db.session() as s:
        s.add_all(City(id=i + 1, name=f"city-{i:02d}", zone="Europe/Kyiv") for i in range(cities))
        s.flush()
        s.add_all(Gateway(id=f"gw-{g:04d}", city_id=g % cities + 1, key_hex="0" * 64) for g in range(n))
    with db.engine.begin() as c:
        c.execute(text(HOURS_SQL[kind].format(order=ORDER[order][kind])), {"n": n, "start": START, "end": START + YEAR})
    t1 = time.monotonic()
    migrate.upgrade(db)
    print(f"  seeded {n * 8760:,} hourly rows in {t1 - t0:.0f} s; migrations from 0008 to head (0009 fills "
          f"call_months) in {time.monotonic() - t1:.0f} s", flush=True)


def api_client(db):
    """An httpx client on the ASGI app (no server, no socket) with a viewer's token."""
    import uuid

    import httpx

    from controller.api import create_app
    from controller.auth import create_token, create_user
    from controller.settings import Settings

    with db.session() as s:
        token = create_token(s, create_user(s, f"bench-{uuid.uuid4().hex[:6]}", "viewer"), "bench")
    app = create_app(db, settings=Settings(secret_key="bench-" + "x" * 32, broker="mqtt://broker.test:1883"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                             headers={"Authorization": f"Bearer {token}"})


def run(argv: list[str] | None = None) -> dict[str, str]:
    """The bench with these arguments (bench/scale_bench.py's report part calls it too): its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--cities", type=int, default=50)
    ap.add_argument("--order", choices=ORDER, default="hour", help="how the hours lie on disk: as the ingest "
                    "writes them (hour), or each gateway's year together (gateway; scale_bench's)")
    ap.add_argument("--sqlite", metavar="FILE", help="a SQLite file instead of PostgreSQL")
    ap.add_argument("--database", default=PG, help="PostgreSQL URL")
    ap.add_argument("--keep", action="store_true", help="keep the seeded database and reuse a kept one")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--api", action="store_true", help="also time GET /api/v1/reports/calls through the app")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--code", metavar="DIR", help="import the controller from DIR (older code, same data)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else REPO))

    from controller import migrate
    from controller.service import tune_interpreter
    from controller.services.reports import call_report_data

    db, kind, fresh, drop = _database(args)
    out: dict[str, str] = {"report_db": kind, "report_rows": str(args.gateways * 8760)}
    try:
        if fresh:
            seed(db, kind, args.gateways, args.cities, args.order)
        else:
            migrate.upgrade(db)
            print(f"  reusing the kept {kind} database", flush=True)
        with db.engine.begin() as c:
            for table in ("call_hours", "call_days", "call_months", "gateways", "cities"):
                c.exec_driver_sql(f"ANALYZE {table}")
        tune_interpreter()
        client = api_client(db) if args.api else None
        for name in args.shapes.split(","):
            group, interval, lo, hi = SHAPES[name]
            times = []
            for _ in range(args.runs):
                with db.session() as s:
                    t = time.perf_counter()
                    data = call_report_data(s, group, interval, lo, hi)
                    times.append(time.perf_counter() - t)
            ms = statistics.median(times) * 1000
            offered = sum(r["offered"] for r in data["rows"])
            line = (f"  report {name}: {ms:.0f} ms (median of {args.runs}, min {min(times) * 1000:.0f}; "
                    f"{len(data['rows'])} rows, {offered:,} calls)")
            out[f"report_{name}_ms"] = f"{ms:.0f}"
            if client is not None:
                ms_api, size = _api_ms(client, group, interval, lo, hi, args.runs)
                line += f"; through the API {ms_api:.0f} ms ({size / 1e6:.1f} MB of JSON)"
                out[f"api_{name}_ms"] = f"{ms_api:.0f}"
            print(line, flush=True)
    finally:
        drop()
    print(f"report on {kind} over one year of hourly aggregates for {args.gateways} gateways ("
          + ", ".join(f"{k[7:-3]} {v} ms" for k, v in out.items() if k.startswith("report_") and k.endswith("_ms"))
          + f"; medians of {args.runs}; target <= 200 ms)", flush=True)
    return out


def main() -> int:
    print(" ".join(f"{k}={v}" for k, v in run().items()))
    return 0


def _api_ms(client, group: str, interval: str, lo: int, hi: int, runs: int) -> tuple[float, int]:
    """Median ms of GET /api/v1/reports/calls through the ASGI app, and the body's size."""
    import asyncio

    async def go():
        await client.get("/api/v1/reports/calls")  # the app's first request (imports, first connection)
        times, size = [], 0
        for _ in range(runs):
            t = time.perf_counter()
            r = await client.get("/api/v1/reports/calls", params={"group": group, "interval": interval,
                                                                   "from": lo, "to": hi})
            times.append(time.perf_counter() - t)
            r.raise_for_status()
            size = len(r.content)
        return statistics.median(times) * 1000, size
    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
