"""The Region page in a real browser: an admin adds a city and a centre, is told which field is wrong when
a centre has a mistake (lines below 0, a number a deny prefix covers), adds a holiday to the city's
calendar and removes it all again; the capacity split the compiler made shows per gateway; a viewer sees
the region without a form."""

from __future__ import annotations

from tests.controller.web.conftest import BROWSER, shot, sign_in

pytestmark = BROWSER


def _submit(page, kind: str, values: dict[str, str], button: str):
    form = page.locator(f"form[data-form='{kind}']")
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator(f"button:text('{button}')").click()


def test_an_admin_edits_the_region_and_mistakes_are_named(world, browser):
    page = sign_in(browser, world, "ann")
    page.click("nav >> text=Region")
    page.wait_for_url("**/region")
    assert "gw-mariupol-1" in page.locator("tr[data-centre='mariupol-102'] td.split").inner_text(), \
        "the compiler's split of the centre's lines shows per gateway"

    _submit(page, "cities", {"name": "Siversk", "zone": "Europe/Kyiv"}, "Add city")
    page.wait_for_selector(".flash.ok")
    assert "Europe/Kyiv" in page.locator("tr[data-city='Siversk']").inner_text()

    _submit(page, "centres", {"code": "siversk-hall", "name": "Siversk city hall", "number": "+380626000111",
                              "capacity": "-1"}, "Add centre")
    page.wait_for_selector("#error")
    assert "centres.capacity" in page.inner_text("#error")
    assert page.locator("form[data-form='centres'] [name=capacity]").get_attribute("aria-invalid") == "true"
    assert page.locator("form[data-form='centres'] [name=code]").input_value() == "siversk-hall", "typing is kept"
    shot(page, "region-mistake")

    _submit(page, "centres", {"capacity": "2", "number": "+74950001122"}, "Add centre")
    page.wait_for_selector("#error")
    assert "centres.number" in page.inner_text("#error") and "+7" in page.inner_text("#error"), \
        "a number a deny prefix covers is refused, naming the field"
    assert page.locator("tr[data-centre='siversk-hall']").count() == 0

    _submit(page, "centres", {"number": "+380626000111"}, "Add centre")
    page.wait_for_selector(".flash.ok")
    row = page.locator("tr[data-centre='siversk-hall']").inner_text()
    assert "+380626000111" in row and "no gateway dials it" in row

    form = page.locator("form[data-form='holidays']")
    form.locator("select[name=calendar]").select_option("Siversk")
    form.locator("[name=date]").fill("2026-12-25")
    form.locator("button:text('Add holiday')").click()
    page.wait_for_selector(".flash.ok")
    assert "2026-12-25" in page.locator("tr[data-calendar='Siversk']").inner_text()
    assert "2026-12-25" not in page.locator("tr[data-calendar='region']").inner_text()
    shot(page, "region")

    # leave the shared world as it was: the holiday, the centre, then the city (no longer in use) go
    page.locator("tr[data-calendar='Siversk'] button[aria-label='Remove 2026-12-25 from Siversk']").click()
    page.wait_for_selector(".flash.ok")
    for what, sel in (("centre siversk-hall", "tr[data-centre='siversk-hall']"),
                      ("city Siversk", "tr[data-city='Siversk']")):
        page.locator(f"{sel} button[aria-label='Remove {what}']").click()
        page.wait_for_selector(".flash.ok")
        assert page.locator(sel).count() == 0
    page.context.close()


def test_a_viewer_reads_the_region_without_forms(world, browser):
    page = sign_in(browser, world, "vera")
    page.click("nav >> text=Region")
    page.wait_for_url("**/region")
    assert page.locator("tr[data-centre='mariupol-102']").count() == 1
    assert page.locator("tr[data-city='Mariupol']").count() == 1
    assert page.locator("form[action^='/region']").count() == 0
    assert page.locator("button:text('Remove')").count() == 0
    shot(page, "region-viewer")
    page.context.close()
