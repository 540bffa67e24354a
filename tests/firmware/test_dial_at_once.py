"""Issue 14: with `CallMachine.dial_at_once` the first ATD goes out as the +CLIP is read, from the line reader's own
task (no other task runs between them); either way the firmware logs its own +CLIP -> ATD time. On the real
MicroPython with the real gw.gsm lines and call machine (fake UARTs)."""

import pytest

from tests.firmware.scenarios import run_scenarios

pytestmark = pytest.mark.micropython

CHECKS = ["answered", "caller_leaves_at_once", "store_out_of_heap", "the_long_way"]


@pytest.fixture(scope="module")
def results():
    return run_scenarios("dial_at_once_checks.py", CHECKS, heap="220K")


def test_the_atd_is_written_before_any_other_task_runs(results):
    r = results["answered"]
    assert [w[0] for w in r["atd"]] == ["ATD+3801;"]
    assert r["atd"][0][1] == r["clip_read_spin"], "another task ran between the +CLIP's read and the ATD's write"
    (rec,) = r["records"]
    assert (rec["outcome"], rec["target"], rec["attempts"]) == ("answered", "a", 1)


def test_the_firmware_reports_its_own_clip_to_atd_time(results):
    (log,) = results["answered"]["logs"]
    fields = dict(f.split("=") for f in log.split("; ")[1].split())
    assert int(fields["clip_atd_us"]) == int(fields["atd_write_us"]) - int(fields["clip_read_us"]) >= 0


def test_a_caller_gone_with_its_caller_id_releases_the_dial_and_the_line_dials_again(results):
    r = results["caller_leaves_at_once"]
    first, second = r["records"]
    assert (first["outcome"], first["reason"], first["attempts"]) == ("abandoned", "caller_hangup", 1)
    assert (second["outcome"], second["target"]) == ("answered", "a")
    cmds = r["gsm2"][r["gsm2"].index("ATD+3801;"):]
    assert cmds[0] == "ATD+3801;" and "ATH" in cmds[1:cmds.index("ATD+3801;", 1)], cmds
    assert r["lines_in_use"] == []


def test_a_record_the_store_has_no_heap_for_still_releases_both_legs(results):
    """The outbox's batch write can meet a MemoryError on a board with a 32 KiB table (bench/firmware_bench.py):
    the call's legs are hung up all the same, and the line takes the next call."""
    r = results["store_out_of_heap"]
    assert r["lines_in_use"] == [] and r["gsm2"][-1] == "ATH"
    assert any("not stored: MemoryError" in x for x in r["logs"]), r["logs"]


def test_the_long_way_dials_after_other_tasks_ran_and_still_reports_its_time(results):
    """With dial_at_once off (it is on by default since the outbox holds one file open at a time), the ATD follows
    a task switch."""
    r = results["the_long_way"]
    assert [w[0] for w in r["atd"]] == ["ATD+3801;"] and r["atd"][0][1] > r["clip_read_spin"]
    (rec,) = r["records"]
    assert rec["outcome"] == "answered" and len(r["logs"]) == 1 and "clip_atd_us=" in r["logs"][0]
