"""Signing in and out in the browser: a wrong password is refused, the session cookie is HttpOnly and
SameSite=Strict, a POST without the form's CSRF token is refused (403), signing out ends the session."""

from __future__ import annotations

from tests.controller.web.conftest import BROWSER, shot, sign_in

pytestmark = BROWSER


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_fleet(world, browser):
    page = browser.new_context().new_page()
    page.goto(f"{world.url}/fleet")
    page.wait_for_url("**/login?next=/fleet")
    shot(page, "login")
    page.fill("input[name=name]", "ann")
    page.fill("input[name=password]", "not her password")
    page.click("button[type=submit]")
    page.wait_for_selector("#error")
    assert "Wrong name or password" in page.inner_text("#error")
    assert "/login" in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "citygate_session"]
    page.fill("input[name=password]", "ann-admin-pass")
    page.click("button[type=submit]")
    page.wait_for_url("**/fleet")  # where she was going
    session = next(c for c in page.context.cookies() if c["name"] == "citygate_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert not session["secure"], "plain http on loopback: Secure only behind TLS (or the cookie_secure setting)"


def test_a_post_without_the_csrf_token_is_refused(world, browser):
    page = sign_in(browser, world, "ann")
    alert = world.alert("test_csrf", "acknowledged only with the form's token")
    for form in ({}, {"csrf": "forged"}):
        r = page.context.request.post(f"{world.url}/alerts/{alert}/acknowledge", form=form, max_redirects=0)
        assert r.status == 403, (form, r.status)
        assert "csrf" in r.text()
    r = page.context.request.post(f"{world.url}/logout", data="{}", headers={"Content-Type": "application/json"},
                                  max_redirects=0)
    assert r.status == 403  # not a form: it cannot carry the token
    page.goto(f"{world.url}/alerts")
    row = page.locator(f"tr[data-alert='{alert}']")
    assert "new" in row.inner_text(), "nothing was acknowledged"


def test_signing_out_ends_the_session(world, browser):
    page = sign_in(browser, world, "vera")
    cookie = next(c for c in page.context.cookies() if c["name"] == "citygate_session")
    page.click("text=Sign out")
    page.wait_for_url("**/login")
    other = browser.new_context()
    other.add_cookies([cookie])  # the old cookie, replayed: the server forgot it
    p2 = other.new_page()
    p2.goto(f"{world.url}/fleet")
    p2.wait_for_url("**/login?next=/fleet")
