"""The fleet in the browser: every gateway with its city, link, signal, tables; filter and sort; a
gateway's page with its ports, a preview by the gateway's own routing code, and a self-test through the
command path answered by the emulated board's firmware."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from controller import reference
from tests.controller.web.conftest import BROWSER, GW, shot, sign_in

pytestmark = BROWSER
DOCS = Path(__file__).resolve().parents[3] / "docs"


def rows(page) -> dict[str, str]:
    found = page.locator("#fleet tbody tr[data-gateway]").all()
    return {r.get_attribute("data-gateway"): r.inner_text() for r in found}


def test_the_fleet_shows_every_gateway_and_its_tables(world, browser):
    page = sign_in(browser, world, "ann")
    fleet = rows(page)
    assert set(fleet) == set(reference.CITIES)
    assert "online" in fleet[GW] and "v1 applied" in fleet[GW] and "change pending" not in fleet[GW]
    assert "offline" in fleet["gw-toretsk-1"]
    assert "change pending: v1 compiled, not rolled out" in fleet["gw-toretsk-1"], fleet["gw-toretsk-1"]
    signal = page.locator(f"tr[data-gateway='{GW}'] td.signal .port")
    assert signal.count() >= 2, "the board's GSM ports, each with its signal"
    path = shot(page, "fleet")
    if os.environ.get("CITYGATE_DOCS_SCREENSHOT"):  # refresh docs/fleet.png from a run
        shutil.copy(path, DOCS / "fleet.png")
    page.select_option("select[name=status]", "online")
    page.click("form.filters button")
    page.wait_for_url("**status=online**")
    assert list(rows(page)) == [GW]
    page.goto(f"{world.url}/fleet?sort=id&desc=1")
    assert list(rows(page)) == sorted(reference.CITIES, reverse=True)
    page.goto(f"{world.url}/fleet?sort=nonsense")
    assert "sort" in page.inner_text("#problem")


def test_a_gateways_page_previews_a_call_and_runs_a_self_test(world, browser):
    page = sign_in(browser, world, "ann")
    page.click(f"a:text('{GW}')")
    page.wait_for_url(f"**/fleet/{GW}")
    assert "gsm1" in page.inner_text("#ports")
    page.fill("#preview-form input[name=caller]", "+380671234567")
    page.fill("#preview-form input[name=at]", "2016-07-25T14:00")
    page.click("#preview-form button")
    page.wait_for_selector("#decision")
    decision = page.inner_text("#decision")
    assert "DIAL" in decision.upper() and "mariupol-102" in decision and "2016-07-25 14:00:00 local" in decision
    page.fill("#preview-form input[name=at]", "yesterday-ish")
    page.click("#preview-form button")
    page.wait_for_selector("#error")
    assert "preview.at" in page.inner_text("#error")
    page.goto(f"{world.url}/fleet/{GW}")
    page.click("button:text('Self-test')")
    page.wait_for_selector(".flash.ok")
    assert f"{GW} answered selftest: ok" in page.inner_text(".flash.ok")
    shot(page, "gateway")


def test_a_viewer_sees_the_fleet_but_sends_no_command(world, browser):
    page = sign_in(browser, world, "vera")
    assert set(rows(page)) == set(reference.CITIES)
    page.goto(f"{world.url}/fleet/{GW}")
    assert page.locator("button:text('Reboot')").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.context.request.post(f"{world.url}/fleet/{GW}/command", form={"csrf": csrf, "op": "reboot"},
                                  max_redirects=0)
    assert r.status == 403 and "role" in r.text()
