"""The emulated modems play prompts and hear keys as the SIM800 / SIM7600 manuals show, and the ground truth
says what the caller heard: driven with AT commands over their ptys, as the firmware drives them."""

from __future__ import annotations

import time

import pytest

from emulator.network import GsmNetwork
from hil_tests.rig.drivers.at_modem import AtError, AtModem
from tests.conditions import until

CALLER = "+380501230001"


@pytest.fixture
def net():
    with GsmNetwork(boot_s=0.2) as network:
        yield network


@pytest.fixture
def board():
    """A board modem of a dialect, driven like the firmware drives it; its URCs collected."""
    opened = []

    def open_(network, dialect, port="gsm1"):
        m = AtModem(port, network.add_modem(port, dialect))
        m.urcs = []
        m.on_urc = m.urcs.append
        opened.append(m.open())
        return m

    yield open_
    for m in opened:
        m.close()


def answered_call(net, modem, keys=None, keys_after_s=1.0):
    call = net.call(modem.name, CALLER, keys=keys, keys_after_s=keys_after_s)
    until(lambda: "RING" in modem.urcs, what="RING")
    modem.answer()
    return call


@pytest.mark.parametrize("dialect,dtmf", [("sim800", "+DTMF"), ("sim7600", "+RXDTMF")])
def test_tts_prompt_plays_into_the_call_and_the_caller_presses_a_key(net, board, dialect, dtmf):
    modem = board(net, dialect)
    modem.command("AT+DDET=1") if dialect == "sim800" else modem.command("AT+CDTAM=1")
    call = answered_call(net, modem, keys="2", keys_after_s=0.5)
    t0 = time.monotonic()
    modem.command('AT+CTTS=2,"Press 2 for the registry"')
    until(lambda: f"{dtmf}: 2" in modem.urcs, 5, "the key during the prompt")
    until(lambda: "+CTTS: 0" in modem.urcs, 5, "the end of the prompt")
    assert time.monotonic() - t0 >= 1.2  # 24 characters of speech
    (leg,) = net.inbound()
    assert leg["keys"] == "2" and leg["answer"] is not None
    (p,) = leg["prompts"]
    assert (p["prompt"], p["kind"], p["complete"], p["heard"]) == ("Press 2 for the registry", "tts", True, True)
    assert 1.2 <= p["s"] <= 3
    call.hangup()


def test_sim7600_tts_without_cdtam_is_not_heard_by_the_caller(net, board):
    modem = board(net, "sim7600")
    answered_call(net, modem)
    modem.command('AT+CTTS=2,"hello"')
    until(lambda: "+CTTS: 0" in modem.urcs, 5, "the end of the prompt")
    assert net.inbound()[0]["prompts"][0]["heard"] is False


def test_sim800_without_ddet_reports_no_key(net, board):
    modem = board(net, "sim800")
    answered_call(net, modem, keys="5", keys_after_s=0.1)
    time.sleep(0.6)  # the key is pressed 0.1 s after the answer; nothing may come of it
    assert not [u for u in modem.urcs if u.startswith("+DTMF")] and net.inbound()[0]["keys"] == ""


def test_ucs2_text_and_stopping_a_prompt(net, board):
    modem = board(net, "sim800")
    answered_call(net, modem)
    modem.command('AT+CTTS=1,"041F0440043804320456044204300020043C04560441044204300020041C04300440045604430070043E043B044C"')
    modem.command("AT+CTTS=0")
    (p,) = net.inbound()[0]["prompts"]
    assert p["prompt"].startswith("Привіт") and p["complete"] is False
    time.sleep(1.0)
    assert "+CTTS: 0" not in modem.urcs, "a stopped prompt does not report its end"
    for bad in ('AT+CTTS=2,""', 'AT+CTTS=1,"04"', "AT+CTTS=2,hello", 'AT+CTTS=3,"x"'):
        with pytest.raises(AtError, match="ERROR"):
            modem.command(bad)


def test_sim800_plays_an_audio_file_on_its_flash_and_refuses_a_missing_one(net, board):
    modem = board(net, "sim800")
    net.audio_file("hall.amr", 0.6)
    answered_call(net, modem)
    with pytest.raises(AtError, match="ERROR"):
        modem.command('AT+CREC=4,"C:\\User\\missing.amr",0,90')
    modem.command('AT+CREC=4,"C:\\User\\hall.amr",0,90')
    until(lambda: "+CREC: 0" in modem.urcs, 5, "+CREC: 0 at the end of the file")
    modem.command('AT+CREC=4,"C:\\User\\hall.amr",0,90')
    modem.command("AT+CREC=5")
    first, second = net.inbound()[0]["prompts"]
    assert (first["prompt"], first["kind"], first["complete"]) == ("hall.amr", "file", True)
    assert 0.5 <= first["s"] <= 1.5 and second["complete"] is False


def test_sim7600_plays_a_file_into_the_call_with_its_audiostate_codes(net, board):
    modem = board(net, "sim7600")
    net.audio_file("hall.wav", 0.5)
    answered_call(net, modem)
    modem.command('AT+CCMXPLAY="C:/hall.wav",1,0')
    until(lambda: "+AUDIOSTATE: audio play stop" in modem.urcs, 5, "the end of the file")
    assert modem.urcs.index("+AUDIOSTATE: audio play") < modem.urcs.index("+AUDIOSTATE: audio play stop")
    modem.command('AT+CCMXPLAY="C:/hall.wav",0,0')  # play path 0: the module's own speaker
    modem.command("AT+CCMXSTOP")
    until(lambda: modem.urcs.count("+AUDIOSTATE: audio play stop") == 2, 5, "the stop's code")
    first, second = net.inbound()[0]["prompts"]
    assert (first["heard"], first["complete"], second["heard"], second["complete"]) == (True, True, False, False)
    with pytest.raises(AtError, match="ERROR"):
        modem.command("AT+CREC=4,\"C:\\User\\hall.wav\",0,90")  # the SIM800's command is not the SIM7600's


def test_a_caller_hanging_up_cuts_the_prompt_short(net, board):
    modem = board(net, "sim800")
    call = answered_call(net, modem)
    modem.command('AT+CTTS=2,"A long welcome that the caller will not wait to hear the end of"')
    call.hangup()
    until(lambda: "NO CARRIER" in modem.urcs, 5, "NO CARRIER")
    (p,) = net.inbound()[0]["prompts"]
    assert p["complete"] is False and p["s"] < 1.0
    time.sleep(0.5)
    assert "+CTTS: 0" not in modem.urcs
