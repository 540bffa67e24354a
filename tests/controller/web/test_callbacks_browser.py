"""Call-backs in the browser: an operator calls a caller back through the emulated board (the firmware
rings the operator's phone, then the caller) and the call-back leaves the queue once the caller answered;
a bad phone number is a 422 naming `call.agent`; notes and "mark done"; a viewer cannot place a call."""

from __future__ import annotations

from tests.conditions import until
from tests.controller.web.conftest import AGENT, BROWSER, shot, sign_in

pytestmark = BROWSER


def test_an_operator_calls_a_caller_back_through_the_board(world, browser):
    citizen = "+380671110001"
    world.rig.network.destination(citizen, answer_after_s=0.5, talk_s=1.5)
    cb = world.callback(citizen)
    until(lambda: all(p.get("calls") == 0 for p in (world.gateway().state.get("ports") or {}).values()), 30,
          "the board's lines free")
    page = sign_in(browser, world, "otto")
    page.click("nav >> text=Call-backs")
    row = page.locator(f"tr[data-callback='{cb}']")
    assert citizen in row.inner_text() and "Mariupol" in row.inner_text()
    shot(page, "callbacks")
    row.locator("input[name=agent]").fill("not a phone")
    row.locator("button:text('Call back now')").click()
    page.wait_for_selector("#error")
    assert page.inner_text("#error").startswith("call.agent: must be a dialable number")
    row = page.locator(f"tr[data-callback='{cb}']")
    row.locator("input[name=agent]").fill(AGENT)
    row.locator("button:text('Call back now')").click()
    page.wait_for_selector(".flash.ok")
    assert f"rings {AGENT}, then {citizen}" in page.inner_text(".flash.ok")
    legs = until(lambda: [t for t in world.rig.network.truth() if t["dir"] == "out" and t["number"] == citizen
                          and t["end"]], 60, "the board called the citizen (ground truth)")
    assert legs[0]["talk_s"] > 0

    def gone():
        page.goto(f"{world.url}/callbacks")
        return page.locator(f"tr[data-callback='{cb}']").count() == 0
    until(gone, 60, "the call-back done once the citizen answered", every=0.5)


def test_notes_and_mark_done(world, browser):
    cb = world.callback("+380671110002", minutes_ago=30)
    page = sign_in(browser, world, "otto")
    page.goto(f"{world.url}/callbacks")
    row = page.locator(f"tr[data-callback='{cb}']")
    row.locator("input[name=text]").fill("no answer at 10:05, <b>try after lunch</b>")
    row.locator("button:text('Add')").click()
    page.wait_for_selector(".flash.ok")
    row = page.locator(f"tr[data-callback='{cb}']")
    assert "otto" in row.inner_text() and "<b>try after lunch</b>" in row.inner_text(), "shown as text, escaped"
    row.locator("button:text('Add')").click()  # an empty note
    page.wait_for_selector("#error")
    assert page.inner_text("#error").startswith("note.text: must be 1 to 500 characters")
    page.locator(f"tr[data-callback='{cb}'] button:text('Mark done')").click()
    page.wait_for_selector(".flash.ok")
    assert f"call-back {cb} marked done" in page.inner_text(".flash.ok")
    assert page.locator(f"tr[data-callback='{cb}']").count() == 0


def test_a_viewer_cannot_place_a_call(world, browser):
    cb = world.callback("+380671110003")
    page = sign_in(browser, world, "vera")
    page.goto(f"{world.url}/callbacks")
    row = page.locator(f"tr[data-callback='{cb}']")
    assert "+38067*****03" in row.inner_text() and "+380671110003" not in row.inner_text(), "masked for viewers"
    assert row.locator("button").count() == 0, "no call, done or note buttons for a viewer"
    csrf = page.locator("form.me input[name=csrf]").get_attribute("value")
    r = page.context.request.post(f"{world.url}/callbacks/{cb}/call", form={"csrf": csrf, "agent": AGENT},
                                  max_redirects=0)
    assert r.status == 403 and "viewer may not do this" in r.text()
    assert not [t for t in world.rig.network.truth() if t["dir"] == "out" and t["number"] == "+380671110003"]
