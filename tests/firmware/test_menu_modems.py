"""gw.menu with the real gw.gsm driver on the real micropython binary against the emulated SIM800 and SIM7600:
the AT commands each dialect gets for a spoken or a recorded prompt, the keys each reports, and what the
caller heard (the network's truth)."""

from __future__ import annotations

import pytest

from emulator.network import GsmNetwork
from tests.conditions import until
from tests.firmware.test_gsm_unit import MpyGsm

pytestmark = pytest.mark.micropython
CALLER = "+380501112233"
WELCOME = "Press 3 for the registry"


@pytest.fixture
def world():
    """world(dialect) -> (network, line on gsm1, answer(keys=None, keys_after_s=...) -> the network's Call)."""
    made = []

    def make(dialect):
        net = GsmNetwork(ring_limit_s=20, boot_s=0.3)
        made.append(net)
        line = MpyGsm(net.add_modem("gsm1", dialect), {"ring_gap_ms": 4500})
        made.append(line)
        assert line.call("start", timeout=15) is True, line.log_text()

        def answer(keys=None, keys_after_s=0.5):
            call = net.call("gsm1", CALLER, keys=keys, keys_after_s=keys_after_s)
            line.wait_event("ring", 5)
            assert line.call("answer") is True
            return call

        return net, line, answer

    yield make
    for thing in reversed(made):
        thing.close()


def menu(line, prompt, timeout_s=1, tries=2):
    return line.call("menu", prompt, timeout_s, tries, timeout=30)


def since_answer(net):
    """The AT commands gsm1 got from ATA on, without the supervisor's polls."""
    cmds = [c for c in net.commands("gsm1") if c not in ("AT+CREG?", "AT+CSQ")]
    return cmds[cmds.index("ATA"):]


def test_sim7600_speaks_into_the_call_and_a_key_stops_the_prompt(world):
    net, line, answer = world("sim7600")
    answer(keys="3")
    assert menu(line, WELCOME) == {"keys": "3", "prompts": 1, "gone": False}
    assert since_answer(net) == ["ATA", "ATI", "AT+CDTAM=1", f'AT+CTTS=2,"{WELCOME}"', "AT+CTTS=0"]
    (t,) = net.inbound()
    assert t["keys"] == "3" and [(p["prompt"], p["heard"], p["complete"]) for p in t["prompts"]] == \
        [(WELCOME, True, False)]


def test_sim800_plays_a_recorded_file_tries_times_without_a_key(world):
    net, line, answer = world("sim800")
    net.audio_file("hall.amr", 0.4)
    answer()
    assert menu(line, "hall.amr") == {"keys": "", "prompts": 2, "gone": False}
    crec = 'AT+CREC=4,"C:\\User\\hall.amr",0,90'
    assert since_answer(net) == ["ATA", "ATI", crec, crec]
    prompts = net.inbound()[0]["prompts"]
    assert [(p["prompt"], p["kind"], p["complete"]) for p in prompts] == [("hall.amr", "file", True)] * 2
    assert prompts[1]["at"] - prompts[0]["at"] >= 0.4 + 1.0, "the second try only after the wait of timeout_s"


def test_sim7600_plays_a_file_and_hears_its_audiostate_end(world):
    net, line, answer = world("sim7600")
    net.audio_file("hall.wav", 0.4)
    answer(keys="#", keys_after_s=1.0)  # after the prompt, within timeout_s
    assert menu(line, "hall.wav", timeout_s=3) == {"keys": "#", "prompts": 1, "gone": False}
    assert since_answer(net) == ["ATA", "ATI", 'AT+CCMXPLAY="C:/hall.wav",1,0']
    (p,) = net.inbound()[0]["prompts"]
    assert p["heard"] and p["complete"]


def test_a_missing_file_is_not_waited_for_in_silence(world):
    net, line, answer = world("sim800")
    answer(keys="2", keys_after_s=3)
    assert menu(line, "nothere.amr", timeout_s=5) == {"keys": "", "prompts": 0, "gone": False}
    assert "ERROR" in line.log_text() and net.inbound()[0]["prompts"] == []


def test_garbage_and_bad_keys_during_the_prompt_are_skipped(world):
    net, line, answer = world("sim800")
    line.call("cmd", "AT+DDET=1")
    answer(keys="1", keys_after_s=1.0)
    rid = line.send("menu", "Welcome to the city hall of Toretsk", 3, 1)
    until(lambda: any(c.startswith("AT+CTTS=2") for c in net.commands("gsm1")), 5, "the prompt")
    net.garbage("gsm1", b"\x00\xff\x13noise\r\n+DTMF: Z\r\n+DTMF: \"12\r\n")
    assert line.result(rid, 20) == {"keys": "1", "prompts": 1, "gone": False}
    assert "garbage key 'Z' skipped" in line.log_text()


def test_text_outside_ascii_is_spoken_as_ucs2(world):
    net, line, answer = world("sim800")
    answer()
    text = "Міська рада"
    assert menu(line, text, tries=1) == {"keys": "", "prompts": 1, "gone": False}
    assert f'AT+CTTS=1,"{"".join("%04X" % ord(c) for c in text)}"' in net.commands("gsm1")
    assert net.inbound()[0]["prompts"][0]["prompt"] == text


def test_a_caller_hanging_up_ends_the_menu_at_once(world):
    net, line, answer = world("sim800")
    call = answer()
    rid = line.send("menu", "A long welcome that nobody will wait to hear to its very end, really", 5, 3)
    until(lambda: net.inbound()[0]["prompts"], 5, "the prompt")
    call.hangup()
    assert line.result(rid, 5) == {"keys": "", "prompts": 1, "gone": True}
    (p,) = net.inbound()[0]["prompts"]
    assert p["complete"] is False and "AT+CTTS=0" not in net.commands("gsm1")
