"""Operators' calls and probes (gw.outbound, gw.probes) on the real MicroPython with scripted lines."""

import pytest

from tests.firmware.scenarios import only_record, run_scenarios

SCENARIOS = ["call_answered", "call_agent_no_answer", "call_citizen_busy", "call_agent_leaves_while_the_citizen_rings",
             "call_refused", "probe_ringing", "probe_answered_before_alerting", "probe_refused", "probe_unreachable",
             "probe_schedule"]


@pytest.fixture(scope="module")
def results():
    # 256K, not the profile's 220K: these scenarios compile the sources on the fly (the call machine, outbound
    # calls, menus, routing), which a board running the build (code in ROMFS) does not pay for
    return run_scenarios("outbound_scenarios.py", SCENARIOS, heap="256K")


def only(results, name):
    """The one record, and no line left held."""
    assert results[name]["lines_in_use"] == [] and not any(results[name]["busy"].values()), "a line left held"
    return only_record(results, name)


def test_the_agent_answers_then_the_citizen_and_they_are_bridged(results):
    r = only(results, "call_answered")
    assert (r["t"], r["cmd"], r["outcome"]) == ("outbound", "c1", "answered")
    assert (r["agent"], r["citizen"]) == ("+3805", "+3806")
    assert results["call_answered"]["answers"] == [[True, {"port": "gsm3", "agent_port": "gsm4"}, None]]
    assert results["call_answered"]["dialled"] == {"gsm4": ["+3805"], "gsm3": ["+3806"]}
    assert results["call_answered"]["bridges"] == [["gsm4", "gsm3"]]
    assert r["port"] == "gsm3" and r["talk_s"] >= 4 and r["ring_s"] >= 3


@pytest.mark.parametrize("name,outcome", [("call_agent_no_answer", "agent_no_answer"),
                                          ("call_citizen_busy", "citizen_busy"),
                                          ("call_agent_leaves_while_the_citizen_rings", "citizen_no_answer")])
def test_an_unfinished_call_says_who_was_not_reached(results, name, outcome):
    r = only(results, name)
    assert (r["outcome"], r["talk_s"]) == (outcome, 0)
    assert results[name]["bridges"] == []
    if name == "call_agent_no_answer":
        assert "gsm3" not in results[name]["dialled"], "no citizen without an agent"
    if name == "call_agent_leaves_while_the_citizen_rings":
        assert results[name]["dialled"]["gsm3"] == ["+3806", "cancelled"]


def test_refused_calls_dial_nobody(results):
    r = results["call_refused"]
    assert [a[2] for a in r["answers"]] == ["denied", "denied", "no_free_port", "no_free_port"]
    assert r["records"] == [] and r["dialled"] == {} and r["lines_in_use"] == []


def test_a_probe_hangs_up_at_alerting_and_holds_the_targets_line_meanwhile(results):
    r = only(results, "probe_ringing")
    assert (r["t"], r["target"], r["port"], r["outcome"], r["pdd_ms"]) == ("probe", "a", "gsm3", "ringing", 40)
    assert results["probe_ringing"]["answers"][1] == [False, None, "no_free_line"], "max_calls 1 counts the probe"


def test_a_probe_answered_before_it_was_heard_ringing_is_hung_up_at_once(results):
    r = only(results, "probe_answered_before_alerting")
    assert (r["outcome"], r["pdd_ms"]) == ("ringing", None)
    assert results["probe_answered_before_alerting"]["hangups"] == {"gsm4": 1}


def test_probes_refused_and_unreachable(results):
    assert [a[2] for a in results["probe_refused"]["answers"]] == ["denied", "unknown_target", "no_free_port"]
    assert results["probe_refused"]["records"] == [] and results["probe_refused"]["dialled"] == {}
    r = only(results, "probe_unreachable")
    assert (r["outcome"], r["pdd_ms"]) == ("unreachable", None)


def test_the_schedule_probes_each_target_once_per_period_and_never_dials_a_denied_one(results):
    r = results["probe_schedule"]
    assert sorted((x["target"], x["outcome"], x["port"]) for x in r["records"]) == \
        [("a", "ringing", "gsm3"), ("ru", "denied", None)]
    assert r["dialled"] == {"gsm3": ["+3801"]}
