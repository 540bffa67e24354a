"""Alerts in the browser: an open alert is acknowledged (by whom shows), then resolved (it moves to the
past alerts); a technician may work alerts, a viewer only reads them."""

from __future__ import annotations

from tests.controller.web.conftest import BROWSER, shot, sign_in

pytestmark = BROWSER


def test_acknowledge_then_resolve_an_alert(world, browser):
    alert = world.alert("gateway_offline", "gw-toretsk-1 offline for 12 min")
    page = sign_in(browser, world, "otto")
    assert int(page.inner_text("header .pill")) >= 1, "the menu counts the alerts nobody acknowledged"
    page.click("nav >> text=Alerts")
    row = page.locator(f"tr[data-alert='{alert}']")
    assert "gateway_offline" in row.inner_text() and "new" in row.inner_text()
    shot(page, "alerts")
    row.locator("button:text('Acknowledge')").click()
    page.wait_for_selector(".flash.ok")
    row = page.locator(f"tr[data-alert='{alert}']")
    assert "acknowledged by otto" in row.inner_text()
    row.locator("button:text('Resolve')").click()
    page.wait_for_selector(".flash.ok")
    assert page.locator(f"tr[data-alert='{alert}']").count() == 0
    page.click("nav.tabs >> text=Past")
    assert "resolved" in page.locator(f"tr[data-alert='{alert}']").inner_text()


def test_a_viewer_reads_alerts_and_a_technician_works_them(world, browser):
    alert = world.alert("port_unregistered", "gsm2 lost its network")
    viewer = sign_in(browser, world, "vera")
    viewer.goto(f"{world.url}/alerts")
    assert viewer.locator(f"tr[data-alert='{alert}'] button").count() == 0
    tech = sign_in(browser, world, "tess")
    tech.goto(f"{world.url}/alerts")
    tech.locator(f"tr[data-alert='{alert}'] button:text('Acknowledge')").click()
    tech.wait_for_selector(".flash.ok")
    assert "acknowledged by tess" in tech.locator(f"tr[data-alert='{alert}']").inner_text()
    assert tech.locator("header nav >> text=Call-backs").count() == 0, "callers' numbers are not technicians'"
