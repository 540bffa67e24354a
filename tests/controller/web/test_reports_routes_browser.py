"""The Routes page in the browser: a city's routes, each gateway's compiled table against the one it runs
(gw-mariupol-1 runs its latest table: up to date; gw-toretsk-1 never got one: every decision changes), and
the preview form posting to the gateway's own preview."""

from __future__ import annotations

from tests.controller.web.conftest import BROWSER, GW, shot, sign_in

pytestmark = BROWSER


def test_a_citys_routes_and_what_each_gateway_runs(world, browser):
    page = sign_in(browser, world, "tess")
    page.click("header nav >> text=Routes")
    page.wait_for_url("**/routes")
    page.select_option("select[name=city]", "Mariupol")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#routes")
    assert page.locator("#routes tr[data-route='police-102']").count() >= 1
    mariupol = page.locator(f"section[data-gateway='{GW}']")
    assert mariupol.locator(".up-to-date").count() == 1, mariupol.inner_text()
    shot(page, "routes")
    mariupol.locator("input[name=caller]").fill("+380671234567")
    mariupol.locator("button:text('Preview')").click()
    page.wait_for_selector("#decision")
    assert "route police-102" in page.inner_text("#decision"), "gsm1 answers 102 in Mariupol"
    assert page.url.endswith(f"/fleet/{GW}/preview")
    page.goto(f"{world.url}/routes?city=Toretsk")
    toretsk = page.locator("section[data-gateway='gw-toretsk-1']")
    assert toretsk.locator("ul.changes li").count() >= 1, "never applied a table: its decisions all change"
    assert "no table →" in toretsk.locator("ul.changes").inner_text()
    response = page.goto(f"{world.url}/routes?city=Atlantis")
    assert response.status == 404 and page.inner_text("#problem").startswith("city:")
