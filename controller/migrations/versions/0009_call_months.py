"""monthly call aggregates (call_months), kept equal to the hourly ones by triggers, filled from them

`call_months` holds, per gateway, UTC month, route and target, the sums of the `call_hours` rows of that
month and `hours`, how many hourly rows they are: the call report's months come from 12 rows a year per
key instead of 365 day rows. A month is a UTC calendar month, as call_days' days are UTC days (both are
what `/reports/calls` buckets by; local periods are counted elsewhere). An hour that is no date (before
1970 or after 9999, a stored start may be anything) is kept under its day, `(hour / 86400) * 86400` as in
call_days, which no reader takes for a month.

Triggers on call_hours apply every insert, update and delete to call_months in the same transaction, as
0008's do to call_days, so whoever writes an hour (the ingest upsert, a late record, a repair by hand)
the months never disagree with the hours; a month row goes when its last hour row goes. Row-level on
both databases (see _pg_function); a statement that changes many hours takes their month rows' locks in
its rows' order.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

COUNTS = ("offered", "answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied",
          "talk_s", "ring_s")
KEY = ("gateway_id", "month", "route", "target")
COLS = ", ".join((*KEY, "hours", *COUNTS))
DATE_MAX = 253402300799  # 9999-12-31T23:59:59Z


def month_of(hour: str, postgresql: bool) -> str:
    """SQL for the UTC month an hour falls in (its day when it is no date)."""
    start = (f"CAST(extract(epoch FROM date_trunc('month', to_timestamp({hour}) AT TIME ZONE 'UTC')) AS BIGINT)"
             if postgresql else f"CAST(strftime('%s', {hour}, 'unixepoch', 'start of month') AS INTEGER)")
    return f"(CASE WHEN {hour} >= 0 AND {hour} <= {DATE_MAX} THEN {start} ELSE ({hour} / 86400) * 86400 END)"


def _upsert(select: str) -> str:
    """Add the (KEY, hours, COUNTS) rows of `select` to call_months."""
    return (f"INSERT INTO call_months ({COLS}) {select} ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
            + ", ".join(f"{c} = call_months.{c} + excluded.{c}" for c in ("hours", *COUNTS)))


def _add(row: str, sign: str, postgresql: bool) -> str:
    """Add (sign '') or take away (sign '-') one hour row, OLD or NEW, to its month row."""
    values = (f"{row}.gateway_id, {month_of(row + '.hour', postgresql)}, {row}.route, {row}.target, {sign}1, "
              + ", ".join(f"{sign}{row}.{c}" for c in COUNTS))
    return _upsert(f"SELECT {values} WHERE true")


def _steps(postgresql: bool) -> tuple[str, str, str]:
    """(same_row, in_place, gone): the test that an update changed only counts (the ingest's upsert; it
    takes no month), the month row's update in place, and the removal of a month row left with no hours.
    An hour moved by hand, even within its month, goes out of the old month row and into the new one."""
    where_old = (f"gateway_id = OLD.gateway_id AND month = {month_of('OLD.hour', postgresql)} "
                 "AND route = OLD.route AND target = OLD.target")
    same_row = ("OLD.gateway_id = NEW.gateway_id AND OLD.hour = NEW.hour AND OLD.route = NEW.route "
                "AND OLD.target = NEW.target")
    in_place = ("UPDATE call_months SET " + ", ".join(f"{c} = {c} + NEW.{c} - OLD.{c}" for c in COUNTS)
                + f" WHERE {where_old}")
    return same_row, in_place, f"DELETE FROM call_months WHERE {where_old} AND hours = 0"


def _pg_function() -> str:
    """A row-level function, the steps of SQLite's triggers. Not statement-level as 0008's: the ingest
    writes its hours one statement per row (an executemany), and per statement the transition tables
    halved the hour upserts a second (10,000/s with call_days alone; 4,500/s, row-level 6,500/s)."""
    same_row, in_place, gone = _steps(True)
    return f"""CREATE FUNCTION call_months_follow_hour() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND {same_row} THEN
    {in_place};
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    {_add('OLD', '-', True)};
    {gone};
  END IF;
  IF TG_OP <> 'DELETE' THEN
    {_add('NEW', '', True)};
  END IF;
  RETURN NULL;
END $$"""


def _sqlite_triggers() -> list[str]:
    """Row-level triggers, the same steps as the PostgreSQL function."""
    same_row, in_place, gone = _steps(False)
    return [
        f"CREATE TRIGGER call_months_insert AFTER INSERT ON call_hours BEGIN {_add('NEW', '', False)}; END",
        f"CREATE TRIGGER call_months_update AFTER UPDATE ON call_hours WHEN {same_row} BEGIN {in_place}; END",
        f"CREATE TRIGGER call_months_move AFTER UPDATE ON call_hours WHEN NOT ({same_row}) BEGIN "
        f"{_add('OLD', '-', False)}; {gone}; {_add('NEW', '', False)}; END",
        f"CREATE TRIGGER call_months_delete AFTER DELETE ON call_hours BEGIN {_add('OLD', '-', False)}; {gone}; END",
    ]


def upgrade() -> None:
    op.create_table(
        'call_months',
        sa.Column('gateway_id', sa.String(length=32), nullable=False),
        sa.Column('month', sa.BigInteger(), nullable=False),
        sa.Column('route', sa.String(length=48), nullable=False),
        sa.Column('target', sa.String(length=48), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in COUNTS],
        sa.PrimaryKeyConstraint('gateway_id', 'month', 'route', 'target'),
    )
    op.create_index('ix_call_months_month', 'call_months', ['month'])
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no writer may add an hour between the fill and the triggers
        op.execute("LOCK TABLE call_hours IN SHARE ROW EXCLUSIVE MODE")
    month = month_of("hour", postgresql)
    op.execute(f"INSERT INTO call_months ({COLS}) SELECT gateway_id, {month}, route, target, count(*), "
               + ", ".join(f"sum({c})" for c in COUNTS) + f" FROM call_hours GROUP BY gateway_id, {month}, route, "
               "target")
    if postgresql:
        op.execute(_pg_function())
        op.execute("CREATE TRIGGER call_months_follow AFTER INSERT OR UPDATE OR DELETE ON call_hours "
                   "FOR EACH ROW EXECUTE FUNCTION call_months_follow_hour()")
    else:
        for sql in _sqlite_triggers():
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER call_months_follow ON call_hours")
        op.execute("DROP FUNCTION call_months_follow_hour()")
    else:
        for event in ("insert", "update", "move", "delete"):
            op.execute(f"DROP TRIGGER call_months_{event}")
    op.drop_index('ix_call_months_month', table_name='call_months')
    op.drop_table('call_months')
