from __future__ import annotations

import pytest
from playwright.sync_api import expect

from wecare.tests.pages_fixtures import WIDTHS, assert_house_style, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sidebar_navigation_swaps_the_page_without_a_reload_and_back_works(browser_page, login_as):
    page = browser_page
    login_as(page, "Operator")
    page.goto("/")
    page.evaluate("window.__marker = 'still here'")

    page.click("#nav a[data-nav=pay]")
    page.wait_for_url("**/pay/")
    assert page.locator("main h1").inner_text() == "Pay"
    assert page.title() == "Pay · WECARE.DIGITAL"
    assert page.locator("#nav a[data-nav=pay]").get_attribute("aria-current") == "page"

    page.click("#nav a[data-nav=agent]")
    page.wait_for_url("**/agent/")
    assert page.locator("main h1").inner_text() == "Agent"
    assert page.evaluate("window.__marker") == "still here"

    page.go_back()
    page.wait_for_url("**/pay/")
    expect(page.locator("main h1")).to_have_text("Pay")
    assert page.evaluate("window.__marker") == "still here"
    page.go_forward()
    page.wait_for_url("**/agent/")
    expect(page.locator("main h1")).to_have_text("Agent")
    assert page.evaluate("window.__marker") == "still here"


def test_a_deep_link_loads_the_whole_page(browser_page, login_as):
    page = browser_page
    login_as(page, "Viewer")

    page.goto("/invoice/")

    assert page.locator("main h1").inner_text() == "Invoice"
    assert page.locator("[data-testid=coming-soon]").is_visible()
    assert page.evaluate("typeof window.htmx") == "object"


@pytest.mark.parametrize("width", WIDTHS.values())
def test_the_shell_fits_the_screen_and_keeps_the_house_style(browser_page, login_as, width):
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    login_as(page, "Operator")

    for path, name in [("/", "home"), ("/pay/", "coming-soon"), ("/agent/", "agent")]:
        page.goto(path)
        screenshot(page, name)
        assert no_horizontal_overflow(page), f"{path} overflows at {width}px"

    assert_house_style(page)
    nav_list = page.locator("#nav-list")
    if width < 720:
        assert not nav_list.is_visible()
        page.click("label.menu-button")
        assert nav_list.is_visible()
        page.click("#nav a[data-nav=pay]")
        page.wait_for_url("**/pay/")
        expect(page.locator("main h1")).to_have_text("Pay")
        assert not page.locator("#nav-list").is_visible()  # the menu folds again after a choice
    else:
        assert nav_list.is_visible() and not page.locator("label.menu-button").is_visible()
