"""daily call aggregates (call_days), kept equal to the hourly ones by triggers, filled from them

`call_days` holds, per gateway, UTC day, route and target, the sums of the `call_hours` rows of that day
(day = (hour / 86400) * 86400 in SQL, the bucket the call report puts an hour in) and `hours`, how many
hourly rows they are. Triggers on call_hours apply every insert, update and delete to call_days in the
same transaction, whoever writes (the ingest writer's upsert, a late record for an old day, a repair
by hand), so the two tables never disagree; a day row goes when its last hour row goes. On PostgreSQL
one statement-level trigger per event folds the statement's transition tables in one upsert (ordered,
so two writers take the day rows' locks in the same order); SQLite runs row-level triggers in-process.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

COUNTS = ("offered", "answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied",
          "talk_s", "ring_s")
KEY = ("gateway_id", "day", "route", "target")
DAY = "(hour / 86400) * 86400"
COLS = ", ".join((*KEY, "hours", *COUNTS))
PG_TRIGGERS = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "delete": "OLD TABLE AS old_rows"}


def _upsert(select: str) -> str:
    """Add the (KEY, hours, COUNTS) rows of `select` to call_days."""
    return (f"INSERT INTO call_days ({COLS}) {select} ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
            + ", ".join(f"{c} = call_days.{c} + excluded.{c}" for c in ("hours", *COUNTS)))


def _pg_function() -> str:
    def rows(table: str, sign: str) -> str:
        return (f"SELECT gateway_id, {DAY} AS day, route, target, {sign}1 AS hours, "
                + ", ".join(f"{sign}{c} AS {c}" for c in COUNTS) + f" FROM {table}")

    folded = ("SELECT gateway_id, day, route, target, sum(hours), " + ", ".join(f"sum({c})" for c in COUNTS)
              + " FROM ({}) AS d GROUP BY gateway_id, day, route, target ORDER BY gateway_id, day, route, target")
    gone = (f"DELETE FROM call_days d USING (SELECT DISTINCT gateway_id, {DAY} AS day, route, target FROM old_rows) o "
            "WHERE d.gateway_id = o.gateway_id AND d.day = o.day AND d.route = o.route AND d.target = o.target "
            "AND d.hours = 0")
    return f"""CREATE FUNCTION call_days_follow_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_upsert(folded.format(rows('new_rows', '')))};
  ELSIF TG_OP = 'UPDATE' THEN
    {_upsert(folded.format(rows('new_rows', '') + ' UNION ALL ' + rows('old_rows', '-')))};
    {gone};
  ELSE
    {_upsert(folded.format(rows('old_rows', '-')))};
    {gone};
  END IF;
  RETURN NULL;
END $$"""


def _sqlite_triggers() -> list[str]:
    def add(row: str, sign: str) -> str:
        values = f"{row}.gateway_id, ({row}.hour / 86400) * 86400, {row}.route, {row}.target, {sign}1, " + ", ".join(
            f"{sign}{row}.{c}" for c in COUNTS)
        return _upsert(f"SELECT {values} WHERE true")

    where_old = ("gateway_id = OLD.gateway_id AND day = (OLD.hour / 86400) * 86400 AND route = OLD.route "
                 "AND target = OLD.target")
    same_day = ("OLD.gateway_id = NEW.gateway_id AND OLD.hour / 86400 = NEW.hour / 86400 AND OLD.route = NEW.route "
                "AND OLD.target = NEW.target")
    gone = f"DELETE FROM call_days WHERE {where_old} AND hours = 0"
    return [
        f"CREATE TRIGGER call_days_insert AFTER INSERT ON call_hours BEGIN {add('NEW', '')}; END",
        f"CREATE TRIGGER call_days_update AFTER UPDATE ON call_hours WHEN {same_day} BEGIN "
        "UPDATE call_days SET " + ", ".join(f"{c} = {c} + NEW.{c} - OLD.{c}" for c in COUNTS)
        + f" WHERE {where_old}; END",
        f"CREATE TRIGGER call_days_move AFTER UPDATE ON call_hours WHEN NOT ({same_day}) BEGIN "
        f"{add('OLD', '-')}; {gone}; {add('NEW', '')}; END",
        f"CREATE TRIGGER call_days_delete AFTER DELETE ON call_hours BEGIN {add('OLD', '-')}; {gone}; END",
    ]


def upgrade() -> None:
    op.create_table(
        'call_days',
        sa.Column('gateway_id', sa.String(length=32), nullable=False),
        sa.Column('day', sa.BigInteger(), nullable=False),
        sa.Column('route', sa.String(length=48), nullable=False),
        sa.Column('target', sa.String(length=48), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in COUNTS],
        sa.PrimaryKeyConstraint('gateway_id', 'day', 'route', 'target'),
    )
    op.create_index('ix_call_days_day', 'call_days', ['day'])
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no writer may add an hour between the fill and the triggers
        op.execute("LOCK TABLE call_hours IN SHARE ROW EXCLUSIVE MODE")
    op.execute(f"INSERT INTO call_days ({COLS}) SELECT gateway_id, {DAY}, route, target, count(*), "
               + ", ".join(f"sum({c})" for c in COUNTS) + f" FROM call_hours GROUP BY gateway_id, {DAY}, route, target")
    if postgresql:
        op.execute(_pg_function())
        for event, tables in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER call_days_{event} AFTER {event.upper()} ON call_hours REFERENCING {tables} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION call_days_follow_hours()")
    else:
        for sql in _sqlite_triggers():
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER call_days_{event} ON call_hours")
        op.execute("DROP FUNCTION call_days_follow_hours()")
    else:
        for event in ("insert", "update", "move", "delete"):
            op.execute(f"DROP TRIGGER call_days_{event}")
    op.drop_index('ix_call_days_day', table_name='call_days')
    op.drop_table('call_days')
