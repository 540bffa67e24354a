"""The call machine on the real MicroPython with scripted lines (modem bytes faked one level up)."""

import json

import pytest

from hil_tests.rig import micropython

SCENARIOS = ["answered", "busy_then_next", "no_answer_then_next", "all_fail_callback", "abandon_while_ringing",
             "caller_ends_talk", "deny_never_dialled", "after_hours", "round_robin", "max_calls"]


@pytest.fixture(scope="module")
def results():
    proc = micropython.run("tests/firmware/mpy/calls_scenarios.py", *SCENARIOS, heap="220K",
                           extra_path=[micropython.REPO / "firmware"], timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = {}
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        out[d["name"]] = d
    assert set(out) == set(SCENARIOS)
    return out


def only(results, name):
    recs = results[name]["records"]
    assert len(recs) == 1, recs
    return recs[0]


def test_answered_call_is_bridged_and_recorded(results):
    r = only(results, "answered")
    assert (r["outcome"], r["reason"], r["target"], r["attempts"], r["route"]) == ("answered", "ok", "a", 1, "main")
    assert r["talk_s"] >= 4 and r["caller"] == "+380501" and r["port"] == "gsm1"
    assert results["answered"]["bridges"] == [["gsm1", "gsm2"]]
    assert results["answered"]["answered"] == {"gsm1": 1}, "late answer: inbound answered once, after the target"


@pytest.mark.parametrize("name", ["busy_then_next", "no_answer_then_next"])
def test_failover_to_the_next_target(results, name):
    r = only(results, name)
    assert (r["outcome"], r["target"], r["attempts"]) == ("answered", "b", 2)
    assert results[name]["dialled"]["gsm2"] == ["+3801", "+3802"]


def test_all_failed_applies_the_fallback(results):
    r = only(results, "all_fail_callback")
    assert (r["outcome"], r["attempts"]) == ("callback", 2)
    assert results["all_fail_callback"]["answered"] == {}, "an unanswered caller is never answered (charged)"


def test_caller_abandons_while_ringing(results):
    r = only(results, "abandon_while_ringing")
    assert (r["outcome"], r["reason"]) == ("abandoned", "caller_hangup")
    assert results["abandon_while_ringing"]["dialled"]["gsm2"] == ["+3801", "cancelled"]
    assert results["abandon_while_ringing"]["answered"] == {}


def test_caller_ends_the_conversation(results):
    r = only(results, "caller_ends_talk")
    assert r["outcome"] == "answered" and 3 <= r["talk_s"] <= 8


def test_denied_target_is_never_dialled(results):
    r = only(results, "deny_never_dialled")
    assert r["target"] == "c"
    assert "+7495" not in sum(results["deny_never_dialled"]["dialled"].values(), [])


def test_after_hours_callback(results):
    r = only(results, "after_hours")
    assert (r["outcome"], r["reason"], r["attempts"]) == ("callback", "after_hours", 0)


def test_round_robin_rotates_per_route(results):
    assert [r["target"] for r in results["round_robin"]["records"]] == ["a", "b", "c"]


def test_max_calls_respected_under_concurrent_calls(results):
    recs = sorted(results["max_calls"]["records"], key=lambda r: r["caller"])
    assert [r["target"] for r in recs] == ["a", "b"]
    assert results["max_calls"]["dialled"].get("gsm2") == ["+3801"], "a (cap 1) was not dialled twice"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_call_releases_everything(results, name):
    assert results[name]["lines_in_use"] == []
    assert all(v == 0 for v in results[name]["busy"].values())
    assert all(r["seq"] == i + 1 for i, r in enumerate(results[name]["records"]))
