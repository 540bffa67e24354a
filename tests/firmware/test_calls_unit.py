"""The call machine on the real MicroPython with scripted lines (modem bytes faked one level up)."""

import pytest

from tests.firmware.scenarios import only_record as only
from tests.firmware.scenarios import run_scenarios

SCENARIOS = ["answered", "busy_then_next", "no_answer_then_next", "all_fail_callback", "abandon_while_ringing",
             "caller_ends_talk", "deny_never_dialled", "after_hours", "round_robin", "round_robin_restored",
             "max_calls", "menu_key", "menu_default", "menu_garbage_keys", "menu_hangup", "menu_play_fails",
             "menu_fxo", "line_releasing"]


@pytest.fixture(scope="module")
def results():
    return run_scenarios("calls_scenarios.py", SCENARIOS, heap="320K")  # sources compiled on import; the board runs the build (tests/hil)


def test_answered_call_is_bridged_and_recorded(results):
    r = only(results, "answered")
    assert (r["outcome"], r["reason"], r["target"], r["attempts"], r["route"]) == ("answered", "ok", "a", 1, "main")
    assert r["talk_s"] >= 4 and r["caller"] == "+380501" and r["port"] == "gsm1"
    assert results["answered"]["bridges"] == [["gsm1", "gsm2"]]
    assert results["answered"]["answered"] == {"gsm1": 1}, "late answer: inbound answered once, after the target"


def test_a_call_waits_for_its_line_to_finish_hanging_up_rather_than_fail_all_busy(results):
    r = results["line_releasing"]
    first, second = r["records"]
    assert (first["outcome"], first["target"]) == ("answered", "a")
    assert (second["outcome"], second["reason"], second["target"], second["route"]) == ("answered", "ok", "d", "solo")
    assert r["dialled"]["gsm2"] == ["+3801", "+3804"]
    assert r["lines_in_use"] == [] and r["busy"] == {"a": 0, "d": 0}


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
    assert results["round_robin"]["turns"] == {"rr": 3}  # decided once per call, the turn advanced once


def test_round_robin_turn_restored_from_the_store_goes_on(results):
    """A reboot brings back the turns of the last counter snapshot: the rotation goes on from there."""
    assert [r["target"] for r in results["round_robin_restored"]["records"]] == ["b", "c", "a"]
    assert results["round_robin_restored"]["turns"] == {"rr": 4}


def test_max_calls_respected_under_concurrent_calls(results):
    recs = sorted(results["max_calls"]["records"], key=lambda r: r["caller"])
    assert [r["target"] for r in recs] == ["a", "b"]
    assert results["max_calls"]["dialled"].get("gsm2") == ["+3801"], "a (cap 1) was not dialled twice"


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_call_releases_everything(results, name):
    assert results[name]["lines_in_use"] == []
    assert all(v == 0 for v in results[name]["busy"].values())
    assert all(r["seq"] == i + 1 for i, r in enumerate(results[name]["records"]))


PROMPT = 'AT+CTTS=2,"hall-welcome"'


def test_menu_key_pressed_during_the_prompt_stops_it_and_dials_the_option(results):
    r = only(results, "menu_key")
    assert (r["route"], r["menu"], r["option"], r["keys"], r["prompts"]) == ("hall", "hall", "2", "2", 1), r
    assert (r["outcome"], r["target"]) == ("answered", "b")
    assert results["menu_key"]["commands"]["gsm7"] == ["ATI", PROMPT, "AT+CTTS=0"]
    assert results["menu_key"]["answered"] == {"gsm7": 1}, "a menu answers the caller once, before any target"
    assert results["menu_key"]["dialled"]["gsm2"] == ["+3802"]


def test_menu_without_a_key_repeats_the_prompt_then_takes_the_default(results):
    r = only(results, "menu_default")
    assert (r["option"], r["keys"], r["prompts"], r["target"], r["outcome"]) == ("0", "", 2, "c", "callback"), r
    assert results["menu_default"]["commands"]["gsm7"] == ["ATI", PROMPT, PROMPT]
    assert results["menu_default"]["dialled"]["gsm3"] == ["+3803"]
    assert r["menu_answer_s"] >= 0 and results["menu_default"]["answered"] == {"gsm7": 1}


def test_menu_skips_garbage_keys_and_an_unknown_key_takes_the_default(results):
    r = only(results, "menu_garbage_keys")
    assert (r["keys"], r["option"], r["target"], r["outcome"]) == ("5", "0", "c", "answered"), r


def test_caller_hanging_up_in_the_menu_is_abandoned_without_dialling(results):
    r = only(results, "menu_hangup")
    assert (r["outcome"], r["reason"], r["route"], r["prompts"]) == ("abandoned", "caller_hangup", "hall", 1), r
    assert "option" not in r and results["menu_hangup"]["dialled"] == {}


def test_a_prompt_the_modem_cannot_play_gives_the_default_at_once(results):
    r = only(results, "menu_play_fails")
    assert (r["prompts"], r["option"], r["target"], r["outcome"]) == (0, "0", "c", "answered"), r
    assert results["menu_play_fails"]["commands"]["gsm7"] == ["ATI", PROMPT]


def test_an_fxo_line_does_not_play_menus_and_answers_late(results):
    r = only(results, "menu_fxo")
    assert (r["prompts"], r["option"], r["target"], r["outcome"]) == (0, "0", "c", "answered"), r
    assert "menu_answer_s" not in r and "fxo1" not in results["menu_fxo"]["commands"]
    assert results["menu_fxo"]["answered"] == {"fxo1": 1}, "answered once, when the target answered"
