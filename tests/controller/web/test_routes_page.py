"""The Routes page in the browser, end to end with real gateways: an admin edits a route with a mistake
and sees the field named, fixes it, previews a call (the gateways' own routing code), reads the diff of the
compiled table against what each gateway runs, starts a staged rollout and watches it, without reloading,
reach "applied" on both of the city's gateways: two emulated boards (the real firmware on MicroPython) that
ack their tables over a real Mosquitto. Kramatorsk gets a second gateway here, in a controller of this
module's own (the package's world is left as the other tests expect it)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from sqlalchemy import select

from controller import reference
from controller.auth import create_user
from controller.compiler import compile_all
from controller.models import City, Gateway, GatewayService
from controller.rollouts import start_rollout
from tests.conditions import until
from tests.controller.board_world import board, controller, seed
from tests.controller.web.conftest import BROWSER, PASSWORDS, PROFILE, ROLES, shot, sign_in

pytestmark = BROWSER
CITY, GWS = "Kramatorsk", ["gw-kramatorsk-1", "gw-kramatorsk-2"]


class Kramatorsk:
    def __init__(self, service):
        self.service, self.url = service, service.url

    def applied(self) -> dict[str, int | None]:
        with self.service.db.session() as s:
            return {g.id: g.applied_version for g in s.scalars(select(Gateway).where(Gateway.id.in_(GWS)))}

    def online(self) -> bool:
        with self.service.db.session() as s:
            return all(g.online for g in s.scalars(select(Gateway).where(Gateway.id.in_(GWS))))


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routes-page")
    with controller(tmp) as service, ExitStack() as rigs:
        with service.db.session() as s:
            seed(s, out_ports=["gsm2"])
            first = s.get(Gateway, GWS[0])
            s.add(Gateway(id=GWS[1], city_id=s.scalars(select(City.id).where(City.name == CITY)).one(),
                          profile=PROFILE, ports=list(first.ports), out_ports=list(first.out_ports),
                          key_hex=reference.gateway_key(GWS[1])))
            for link in list(first.services):
                s.add(GatewayService(gateway_id=GWS[1], service_id=link.service_id, port=link.port))
            s.flush()
            compile_all(s)
            keys = {g: s.get(Gateway, g).key_hex for g in GWS}
            for name, role in ROLES.items():
                create_user(s, name, role, PASSWORDS[name])
        for gw in GWS:
            rigs.enter_context(board(service, keys[gw], tmp, gw)).power_on()
        k = Kramatorsk(service)
        until(k.online, 120, "both Kramatorsk boards online")
        with service.db.session() as s:
            start_rollout(s, service.bridge, GWS)
        until(lambda: set(k.applied().values()) == {1}, 90, "both boards running table v1")
        yield k


def test_edit_preview_diff_and_a_rollout_watched_live(city, browser):
    page = sign_in(browser, city, "ann")
    page.goto(f"{city.url}/routes?city={CITY}")
    for gw in GWS:
        assert page.locator(f"section[data-gateway='{gw}'] .up-to-date").count() == 1, "both run their latest"

    # a mistake: a centre that does not exist; the field is named next to the input, the form kept
    page.locator("#routes tr[data-route='police-102'] a.edit").click()
    page.wait_for_selector("#route-form")
    page.fill("#route-form input[name=targets]", "mariupol-reserve, mariupol-9")
    page.click("#route-form button[type=submit]")
    error = page.wait_for_selector("#error-targets")
    assert error.inner_text() == 'routes.targets[1]: names no call centre: "mariupol-9"'
    assert page.locator("label.has-error[data-field=targets] input").input_value() == "mariupol-reserve, mariupol-9"
    shot(page, "routes-edit-error")

    # fixed: the reserve centre first
    page.fill("#route-form input[name=targets]", "mariupol-reserve, mariupol-102")
    page.click("#route-form button[type=submit]")
    page.wait_for_selector(".flash.ok")
    assert "route police-102 saved in Kramatorsk" in page.inner_text(".flash.ok")
    assert "mariupol-reserve → mariupol-102" in page.locator("#routes tr[data-route='police-102']").inner_text()

    # the preview: a Monday afternoon call to 102 now goes to the reserve first, by the new compiled table
    page.select_option("#route-preview select[name=gateway]", GWS[1])
    page.fill("#route-preview input[name=caller]", "+380671234567")
    page.fill("#route-preview input[name=at]", "2016-07-25T14:00")
    page.click("#route-preview button[type=submit]")
    decision = page.wait_for_selector("#route-decision").inner_text()
    assert "dial" in decision.lower() and decision.index("mariupol-reserve") < decision.index("mariupol-102"), decision
    assert "Why: a centre is free to take it · route police-102" in decision
    assert "2016-07-25 14:00:00 local" in decision and "table v2" in decision

    # the diff against what each gateway runs: v2 compiled, v1 applied, police-102's centres swapped
    for gw in GWS:
        section = page.locator(f"section[data-gateway='{gw}']")
        assert "runs v1 · desired v1 · compiled v2" in section.locator(".versions").inner_text()
        changed = section.locator("ul.diff li[data-kind=route][data-name='police-102 (gsm1)']")
        assert changed.inner_text() == ("route police-102 (gsm1) changed: targets: mariupol-102, mariupol-reserve "
                                        "→ mariupol-reserve, mariupol-102")
        assert section.locator("ul.diff li").count() == 1, section.locator("ul.diff").inner_text()
        assert "dial mariupol-102, mariupol-reserve → dial mariupol-reserve, mariupol-102" in \
            section.locator("ul.changes").inner_text()
    shot(page, "routes-diff")

    # the staged rollout: gw-kramatorsk-1 first (the canary), then the rest; watched without a reload
    assert page.is_checked("#rollout-form input[name=canary]")
    page.click("#rollout-form button[type=submit]")
    page.wait_for_selector("#rollout")
    assert "rollout" in page.inner_text(".flash.ok") and "gw-kramatorsk-1 first" in page.inner_text(".flash.ok")
    page.evaluate("""() => {
        window.notReloaded = true;
        window.seen = [];
        new MutationObserver(() => window.seen.push(Array.from(document.querySelectorAll('#rollout td.status'),
            td => td.textContent).join(','))).observe(document.getElementById('rollout'),
            {subtree: true, childList: true, characterData: true});
    }""")
    stages = {gw: page.locator(f"#rollout tr[data-gateway='{gw}'] td").nth(1).inner_text() for gw in GWS}
    assert stages == {GWS[0]: "canary", GWS[1]: "rest"}
    page.wait_for_selector("#rollout[data-status=done]", timeout=180_000)
    statuses = page.locator("#rollout td.status").all_inner_texts()
    assert statuses == ["applied", "applied"]
    assert page.locator("#rollout td[data-col=runs]").all_inner_texts() == ["v2", "v2"]
    assert page.evaluate("window.notReloaded") is True, "the page was not reloaded"
    assert page.evaluate("window.seen").count("applied,applied") >= 1, "the script wrote the statuses"
    assert page.inner_text("#rollout .rollout-status") == "done"
    shot(page, "routes-rollout")
    assert city.applied() == {GWS[0]: 2, GWS[1]: 2}

    # afterwards both gateways run what was compiled
    page.goto(f"{city.url}/routes?city={CITY}")
    for gw in GWS:
        section = page.locator(f"section[data-gateway='{gw}']")
        assert section.locator(".up-to-date").count() == 1 and section.locator("ul.diff").count() == 0
        assert "runs v2" in section.locator(".versions").inner_text()
    page.context.close()


def test_a_viewer_reads_the_routes_and_the_rollout_but_changes_nothing(city, browser):
    page = sign_in(browser, city, "vera")
    page.goto(f"{city.url}/routes?city={CITY}")
    assert page.locator("#routes tr[data-route='police-102']").count() == 1
    assert page.locator("a.edit").count() == 0 and page.locator("#rollout-form").count() == 0
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    r = page.context.request.post(f"{city.url}/routes/rollout", form={"csrf": csrf, "city": CITY}, max_redirects=0)
    assert r.status == 403 and "role" in r.text()
    watched = page.context.request.get(f"{city.url}/routes/rollouts/1")
    assert watched.status == 200 and watched.json()["targets"], "readers watch rollouts"
    page.context.close()
