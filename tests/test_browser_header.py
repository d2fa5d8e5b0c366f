"""The header and the upload panel as people see them: headless Debian Chromium, real server.

The header is measured, not only looked at: at 1366 px every item of it shares one line, in
French (the longer language) and as an administrator (who has the most links); on a phone it
takes two rows at most, the rest behind a menu button that works from the keyboard and without
scripts. The studio's upload panel (Uppy) is checked for the site's colours, font and corners,
for contrast, and for the site's words. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from typing import Any

from tests.account_fixtures import PASSWORD, make_user
from tests.app_fixtures import LiveServer

# tests.test_browser skips this module (or fails, in CI) when Chromium or Playwright is missing.
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, playwright_api, screenshot

LAPTOP = {"width": 1366, "height": 768}
PHONES = ({"width": 375, "height": 667}, {"width": 360, "height": 740})
# The site's palette (site.css): what the upload panel must wear.
ACCENT = "rgb(179, 52, 31)"
RADIUS = "6px"
# Every item a visitor can see or reach in the header.
ITEMS = (
    ".site-header :is(.brand, .site-nav a, .search-box input, .search-box button, .lang-switch,"
    " .account-nav a, .account-nav button, .menu-button)"
)
# The boxes of the visible ones, in the header's order.
BOXES = """(selector) => Array.from(document.querySelectorAll(selector))
  .filter((e) => e.checkVisibility({ visibilityProperty: true }))
  .map((e) => {
    const r = e.getBoundingClientRect();
    const name = (e.textContent || e.placeholder || e.className).trim().replace(/\\s+/g, " ");
    return { name, top: r.top, bottom: r.bottom, left: r.left, right: r.right };
  })"""
# WCAG 2 contrast of every piece of text under `root` against what is behind it (the nearest
# opaque background up the tree); the pieces under the AA minimum are returned.
LOW_CONTRAST = """(root) => {
  const rgba = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const behind = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const bg = rgba(getComputedStyle(e).backgroundColor);
      if (bg.length < 4 || bg[3] === 1) return bg;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const element of document.querySelectorAll(root + " *")) {
    const own = Array.from(element.childNodes).some((n) => n.nodeType === 3 && n.data.trim());
    const shown = element.checkVisibility({ visibilityProperty: true, opacityProperty: true });
    if (!own || !shown) continue;
    const style = getComputedStyle(element);
    const [a, b] = [luminance(rgba(style.color)), luminance(behind(element))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${element.textContent.trim()}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def rows(boxes: list[dict[str, Any]]) -> list[list[str]]:
    """The items grouped by line: one horizontal line crosses every box of a group."""
    lines: list[tuple[float, list[str]]] = []
    for box in sorted(boxes, key=lambda b: b["top"]):
        if lines and box["top"] < lines[-1][0]:
            bottom, names = lines[-1]
            lines[-1] = (min(bottom, box["bottom"]), [*names, box["name"]])
        else:
            lines.append((box["bottom"], [box["name"]]))
    return [names for _, names in lines]


def header(page: Any) -> tuple[list[list[str]], float]:
    """The header's lines of items, and its height."""
    boxes = page.evaluate(BOXES, ITEMS)
    width = page.viewport_size["width"]
    assert all(b["left"] >= 0 and b["right"] <= width for b in boxes), f"off screen: {boxes}"
    height: float = page.locator(".site-header").bounding_box()["height"]
    return rows(boxes), height


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("form:has(#login-email) button[type=submit]")
    page.wait_for_url(f"{url}/studio")


def check_laptop(page: Any, name: str) -> None:
    page.set_viewport_size(LAPTOP)
    page.goto(page.url)
    lines, height = header(page)
    assert len(lines) == 1, f"{name} at 1366 px: the header holds on {len(lines)} lines: {lines}"
    assert height <= 72, f"{name} at 1366 px: the header is {height} px high"
    assert page.locator(".menu-button").is_hidden(), "no menu button where everything fits"
    screenshot(page, f"header-{name}-1366")


def menu_expanded(page: Any) -> bool:
    """Whether the menu button says, to assistive technologies, that its menu is open."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    (button,) = [
        n
        for n in nodes
        if n.get("role", {}).get("value") == "button" and n.get("name", {}).get("value") == "Menu"
    ]
    states = {p["name"]: p["value"]["value"] for p in button.get("properties", [])}
    return bool(states["expanded"])


def check_phone(page: Any, name: str, links: list[str]) -> None:
    """Two rows at most; the menu button opens the other links, from the keyboard too."""
    for viewport in PHONES:
        page.set_viewport_size(viewport)
        page.goto(page.url)
        lines, height = header(page)
        size = viewport["width"]
        assert len(lines) <= 2, f"{name} at {size} px: the header takes {len(lines)} rows: {lines}"
        assert height <= 120, f"{name} at {size} px: the header is {height} px high"
        screenshot(page, f"header-{name}-{size}")
        menu = page.locator("#site-menu")
        assert menu.is_hidden() and not menu_expanded(page)
        page.focus(".menu-button")
        page.keyboard.press("Enter")
        assert menu.is_visible() and menu_expanded(page)
        shown = [t.strip() for t in menu.locator("a, button").all_inner_texts()]
        assert shown == links, f"the menu shows {shown}"
        page.keyboard.press("Tab")
        first = page.evaluate("() => document.activeElement.textContent.trim()")
        assert first == links[0], "the menu's first link comes next in the keyboard's order"
        screenshot(page, f"header-{name}-{size}-menu")
        page.keyboard.press("Escape")
        assert menu.is_hidden() and not menu_expanded(page)


NAV = ["Accueil", "Artistes", "Lieux", "Mots-clés", "Collections"]


def test_the_header_holds_on_one_line_at_1366_px_and_stays_compact_on_a_phone(
    live_server: LiveServer,
) -> None:
    url = live_server.url
    make_user(live_server.services, "ines@example.org", artists=["Les Ondes"])
    make_user(live_server.services, "admin@example.org", "admin")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for email, name, own in (
                (None, "visitor", []),
                ("ines@example.org", "artist", ["Mes productions", "Compte", "Se déconnecter"]),
                (
                    "admin@example.org",
                    "admin",
                    ["Mes productions", "Administration", "Compte", "Se déconnecter"],
                ),
            ):
                context = browser.new_context(viewport=LAPTOP, locale="fr-FR")
                page = context.new_page()
                page.set_default_timeout(30_000)
                if email is None:
                    page.goto(f"{url}/artists")
                else:
                    sign_in(page, url, email)
                check_laptop(page, name)
                check_phone(page, name, NAV + own)
                # The search field still shows what is typed, and searches.
                page.fill("#site-search", "Fauré")
                page.press("#site-search", "Enter")
                page.wait_for_url(re.compile(r".*/search\?q=Faur%C3%A9$"))
                context.close()
            # The menu is the browser's own: it opens without any script.
            context = browser.new_context(
                viewport=PHONES[1], locale="fr-FR", java_script_enabled=False
            )
            page = context.new_page()
            page.goto(f"{url}/venues")
            page.click(".menu-button")
            page.click("#site-menu a:has-text('Artistes')")
            page.wait_for_url(f"{url}/artists")
            context.close()
        finally:
            browser.close()


# Every string the French panel may show, through Uppy's own translator; those saying
# "téléverser" (the site says "envoyer") are returned.
OTHER_WORDS = """async (root) => {
  const panel = document.querySelector(root);
  // The strings file as npm ships it (the page's scripts are bundled: no path to follow).
  const french = (await import("/static/vendor/uppy/locales/fr_FR.js")).default;
  const dashboard = panel.uppy.getPlugin("Dashboard");
  const found = [];
  for (const key of Object.keys(french.strings)) {
    for (const translate of [panel.uppy.i18n, dashboard.i18n]) {
      const text = translate(key, { smart_count: 2 });
      if (/t[ée]l[ée]vers/i.test(text)) found.push(`${key}: ${text}`);
    }
  }
  return found;
}"""
ADD_A_FILE = """(root) => document.querySelector(root).uppy.addFile({
  name: "répétition.wav", type: "audio/wav",
  data: new Blob([new Uint8Array(4096)], { type: "audio/wav" }),
})"""


def style(page: Any, selector: str, name: str) -> str:
    value: str = page.locator(selector).first.evaluate(
        f"(e) => getComputedStyle(e).getPropertyValue({name!r})"
    )
    return value


def test_the_upload_panel_wears_the_site_colours_and_says_its_words(
    live_server: LiveServer,
) -> None:
    url = live_server.url
    make_user(live_server.services, "ines@example.org", artists=["Les Ondes"])
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for viewport, name in ((LAPTOP, "1366"), (PHONES[1], "360")):
                context = browser.new_context(viewport=viewport, locale="fr-FR")
                page = context.new_page()
                page.set_default_timeout(30_000)
                sign_in(page, url, "ines@example.org")
                page.wait_for_selector(".uppy-Dashboard-inner")
                body_font = style(page, "body", "font-family")
                assert style(page, ".uppy-Dashboard-AddFiles-title", "font-family") == body_font
                assert style(page, ".uppy-Dashboard-browse", "color") == ACCENT
                assert style(page, ".uppy-Dashboard-inner", "border-radius") == RADIUS
                assert page.evaluate(LOW_CONTRAST, ".uppy-Dashboard") == []
                assert page.evaluate(OTHER_WORDS, "[data-uploader]") == []
                screenshot(page, f"uploader-{name}")
                # A file chosen: the panel lists it and offers to send it, in the site's red.
                page.evaluate(ADD_A_FILE, "[data-uploader]")
                send = page.locator(".uppy-StatusBar-actionBtn--upload")
                assert send.inner_text().strip() == "Envoyer 1 fichier"
                button = style(page, ".uppy-StatusBar-actionBtn--upload", "background-color")
                assert button == ACCENT
                assert page.evaluate(LOW_CONTRAST, ".uppy-Dashboard") == []
                send.scroll_into_view_if_needed()
                screenshot(page, f"uploader-{name}-file-chosen")
                context.close()
        finally:
            browser.close()
