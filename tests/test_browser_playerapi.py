"""The embed as partner sites drive it with player.js: headless Debian Chromium, real HLS.

A partner page on another origin (another port) loads the npm client `player.js` and drives
the embed with it, as a festival's page would: ready, the methods, the events. The embed talks
to that page only and plays one at a time with the other embeds of the page. The partner site
and the helpers driving it serve tests/test_browser_playback.py too. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests import test_browser
from tests.partner_site import PartnerSite
from tests.test_browser import ROOT, Catalogue, screenshot

# Its fixtures, shared: the browser, the pages watched for the policy, the catalogue's server.
browser = test_browser.browser
shared_context = test_browser.shared_context
new_page = test_browser.new_page
catalogue = test_browser.catalogue
artifacts = test_browser.artifacts

CLIENT = ROOT / "web/static/vendor/player.js/player-0.1.0.js"
LAPTOP = {"width": 1366, "height": 768}
# What a request for media looks like: playlists, init segments, fragments.
MEDIA_REQUEST = re.compile(r"\.(m3u8|m4s|mp4|m4a|aac|ts)(\?|$)")
WAIT_MS = 30_000


# --- the partner site ----------------------------------------------------------------------------


class Partner(PartnerSite):
    """A site on another origin: pages published by the test, and the player.js client."""

    def __init__(self) -> None:
        super().__init__({"/player.js": CLIENT.read_bytes()})

    def festival(self, *frames: tuple[str, int, int | str]) -> str:
        """A page framing each (src, height, width) and driving them with player.js: the page's
        `players`, the events its callbacks got in `heard`, every player.js message it received
        in `raw`, and `ask(index, getter)`."""
        iframes = "".join(
            f"<iframe src='{src}' width='{width}' height='{height}' "
            "style='border:0;max-width:100%;display:block;margin-bottom:12px' "
            "allow='autoplay; fullscreen'></iframe>"
            for src, height, width in frames
        )
        return self.publish(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Festival</title><script src='/player.js'></script></head>"
            "<body style='margin:20px;font-family:sans-serif'><h1>Festival partenaire</h1>"
            f"{iframes}<script>{DRIVER}</script></body></html>"
        )


DRIVER = """
window.heard = [];
window.raw = [];
window.callbacks = {};
const frames = Array.from(document.querySelectorAll("iframe"));
window.addEventListener("message", (event) => {
  let data;
  try { data = JSON.parse(event.data); } catch (error) { return; }
  if (!data || data.context !== "player.js") return;
  raw.push({ frame: frames.findIndex((f) => f.contentWindow === event.source),
             origin: event.origin, event: data.event, listener: data.listener ?? null,
             value: data.value ?? null });
});
window.players = frames.map((iframe, index) => {
  const player = new playerjs.Player(iframe);
  player.on("ready", () => heard.push({ index, event: "ready" }));
  return player;
});
window.listen = (index, event) => {
  const callback = (value) => heard.push({ index, event, value: value ?? null });
  callbacks[`${index}:${event}`] = callback;
  players[index].on(event, callback);
};
window.ask = (index, getter) => new Promise((resolve) => players[index][getter](resolve));
window.post = (index, message) => frames[index].contentWindow.postMessage(
  typeof message === "string" ? message : JSON.stringify(message), "*");
"""


@pytest.fixture
def partner() -> Iterator[Partner]:
    site = Partner()
    yield site
    site.close()


def heard(page: Any, event: str, index: int = 0) -> list[Any]:
    """The values the page's callbacks got for `event` from the player at `index`."""
    values: list[Any] = page.evaluate(
        "([index, event]) => heard.filter((h) => h.index === index && h.event === event)"
        ".map((h) => h.value)",
        [index, event],
    )
    return values


def wait_heard(page: Any, event: str, index: int = 0, count: int = 1) -> None:
    page.wait_for_function(
        "([index, event, count]) => heard.filter((h) => h.index === index"
        " && h.event === event).length >= count",
        arg=[index, event, count],
        timeout=WAIT_MS,
    )


def ask(page: Any, index: int, getter: str) -> Any:
    return page.evaluate("([index, getter]) => ask(index, getter)", [index, getter])


def call(page: Any, index: int, method: str, *args: Any) -> None:
    page.evaluate(
        "([index, method, args]) => players[index][method](...args)", [index, method, list(args)]
    )


def embed_frame(page: Any, index: int = 0) -> Any:
    frames = [frame for frame in page.frames if "/embed/" in frame.url]
    return frames[index]


def media_requests(page: Any) -> list[str]:
    """Every request for media the page and its frames make from now on."""
    seen: list[str] = []
    page.on(
        "request",
        lambda request: (
            seen.append(request.url) if MEDIA_REQUEST.search(request.url.split("#")[0]) else None
        ),
    )
    return seen


# --- the protocol, driven by the npm client ------------------------------------------------------


def test_a_partner_page_drives_the_embed_with_the_player_js_client(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    loaded = media_requests(page)
    page.goto(partner.festival((f"{catalogue.url}/embed/{catalogue.video_id}", 360, 640)))
    wait_heard(page, "ready")
    # ready came to the partner's origin from ours, unasked, with what the embed supports.
    ready = page.evaluate("() => raw.find((m) => m.event === 'ready')")
    assert ready["origin"] == catalogue.url
    assert ready["value"]["src"] == f"{catalogue.url}/embed/{catalogue.video_id}"
    assert set(ready["value"]["events"]) >= {
        "ready",
        "play",
        "pause",
        "ended",
        "timeupdate",
        "progress",
        "seeked",
        "error",
    }
    assert "setCurrentTime" in ready["value"]["methods"]
    assert page.evaluate("() => players[0].supports('method', ['getLoop', 'setVolume'])")
    for event in ("play", "pause", "timeupdate", "seeked", "progress"):
        page.evaluate("(event) => listen(0, event)", event)

    assert ask(page, 0, "getPaused") is True
    assert ask(page, 0, "getDuration") == pytest.approx(12, abs=0.1), "known before play"
    assert loaded == [], "nothing of the media before play"

    call(page, 0, "mute")
    assert ask(page, 0, "getMuted") is True
    call(page, 0, "play")
    wait_heard(page, "play")
    wait_heard(page, "timeupdate", count=3)
    assert ask(page, 0, "getPaused") is False
    assert any(url.endswith("/master.m3u8") for url in loaded)
    moments = heard(page, "timeupdate")
    assert all(m["duration"] == pytest.approx(12, abs=0.2) for m in moments)
    wait_heard(page, "progress")
    assert 0 < heard(page, "progress")[-1]["percent"] <= 1

    call(page, 0, "setCurrentTime", 8)
    wait_heard(page, "seeked")
    assert 8 <= ask(page, 0, "getCurrentTime") < 10
    assert heard(page, "seeked")[-1]["seconds"] == pytest.approx(8, abs=0.5)

    call(page, 0, "pause")
    wait_heard(page, "pause")
    assert ask(page, 0, "getPaused") is True
    frame = embed_frame(page)
    assert frame.evaluate("() => document.querySelector('video').paused")

    call(page, 0, "unmute")
    assert ask(page, 0, "getMuted") is False
    call(page, 0, "setVolume", 30)
    assert ask(page, 0, "getVolume") == pytest.approx(30)
    assert frame.evaluate("() => document.querySelector('video').volume") == pytest.approx(0.3)
    assert ask(page, 0, "getLoop") is False
    call(page, 0, "setLoop", True)
    assert ask(page, 0, "getLoop") is True
    assert frame.evaluate("() => document.querySelector('video').loop")
    assert page.js_errors == []


def test_removing_a_listener_stops_its_messages(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    page.goto(partner.festival((f"{catalogue.url}/embed/{catalogue.video_id}", 360, 640)))
    wait_heard(page, "ready")
    page.evaluate("() => listen(0, 'timeupdate')")
    call(page, 0, "mute")
    call(page, 0, "play")
    wait_heard(page, "timeupdate", count=2)
    page.evaluate("() => players[0].off('timeupdate', callbacks['0:timeupdate'])")
    # The client forgets the callback at once; the embed must stop sending too.
    page.wait_for_timeout(500)
    sent = page.evaluate("() => raw.filter((m) => m.event === 'timeupdate').length")
    page.wait_for_timeout(1500)
    assert ask(page, 0, "getPaused") is False, "still playing"
    assert page.evaluate("() => raw.filter((m) => m.event === 'timeupdate').length") == sent


def test_ended_fires_at_the_end_of_a_short_clip(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    page.goto(partner.festival((f"{catalogue.url}/embed/{catalogue.audio_id}", 166, 640)))
    wait_heard(page, "ready")
    page.evaluate("() => { listen(0, 'ended'); listen(0, 'seeked'); }")
    call(page, 0, "mute")
    # A seek gives the media its source: the position is reached before anything plays.
    call(page, 0, "setCurrentTime", 4.5)
    wait_heard(page, "seeked")
    assert ask(page, 0, "getPaused") is True
    call(page, 0, "play")
    wait_heard(page, "ended")
    assert ask(page, 0, "getCurrentTime") == pytest.approx(ask(page, 0, "getDuration"), abs=0.3)


def test_a_recording_that_cannot_be_played_sends_error(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP, fresh=True)
    page.route("**/master.m3u8", lambda route: route.fulfill(status=404, body=""))
    page.goto(partner.festival((f"{catalogue.url}/embed/{catalogue.audio_id}", 166, 640)))
    wait_heard(page, "ready")
    page.evaluate("() => listen(0, 'error')")
    call(page, 0, "mute")
    call(page, 0, "play")
    wait_heard(page, "error")
    error = heard(page, "error")[0]
    assert error["code"] == -1
    assert error["msg"] == "Cet enregistrement ne peut pas être lu pour le moment."
    assert page.frame_locator("iframe").locator(".cl-player__error").is_visible()


def test_starting_one_embed_pauses_the_others_of_the_page(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    page.goto(
        partner.festival(
            (f"{catalogue.url}/embed/{catalogue.video_id}", 360, 640),
            (f"{catalogue.url}/embed/{catalogue.audio_id}", 166, 640),
        )
    )
    wait_heard(page, "ready", 0)
    wait_heard(page, "ready", 1)
    page.evaluate("() => { listen(0, 'pause'); listen(0, 'play'); listen(1, 'play'); }")
    call(page, 0, "mute")
    call(page, 1, "mute")
    call(page, 0, "play")
    wait_heard(page, "play", 0)
    assert ask(page, 0, "getPaused") is False
    # The listener presses play in the second frame.
    page.frame_locator("iframe").nth(1).locator("media-play-button").click()
    wait_heard(page, "play", 1)
    wait_heard(page, "pause", 0)
    assert ask(page, 0, "getPaused") is True
    assert ask(page, 1, "getPaused") is False
    screenshot(page, "playerapi-two-embeds-desktop")


def test_the_embed_obeys_only_the_page_framing_it(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    """Another site framed by the same page can neither drive the embed nor hear it."""
    other = Partner()
    try:
        intruder = other.publish(
            "<!doctype html><meta charset='utf-8'><title>x</title><script>"
            "window.got = [];"
            "addEventListener('message', (e) => got.push(String(e.data)));"
            "setInterval(() => { const embed = parent.frames[0];"
            " for (const m of [{context: 'player.js', version: '0.0.11', method: 'play'},"
            "  {context: 'player.js', version: '0.0.11', method: 'addEventListener',"
            "   value: 'timeupdate', listener: 'spy'}])"
            " { embed.postMessage(JSON.stringify(m), '*'); } }, 100);"
            "</script>"
        )
        page = new_page(LAPTOP)
        loaded = media_requests(page)
        page.goto(
            partner.festival(
                (f"{catalogue.url}/embed/{catalogue.video_id}", 360, 640), (intruder, 50, 300)
            )
        )
        wait_heard(page, "ready")
        page.wait_for_timeout(1500)
        assert ask(page, 0, "getPaused") is True
        assert loaded == []
        spy = next(frame for frame in page.frames if frame.url == intruder)
        assert spy.evaluate("() => got") == []
        # The framing page itself, writing the protocol by hand rather than with the client.
        page.evaluate("() => post(0, {context: 'player.js', version: '0.0.11', method: 'mute'})")
        page.wait_for_function("() => ask(0, 'getMuted')")
        assert spy.evaluate("() => got") == []
    finally:
        other.close()


def test_embed_origins_limits_who_may_drive_the_player(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    """With `embed_origins` in its configuration, the player answers those sites only."""

    def serve_with(origins: list[str]) -> Callable[[Any], None]:
        def handle(route: Any) -> None:
            response = route.fetch()
            body = response.text().replace(
                '"embed_origins": null', f'"embed_origins": {json.dumps(origins)}'
            )
            assert json.dumps(origins) in body
            route.fulfill(response=response, body=body)

        return handle

    embed = f"{catalogue.url}/embed/{catalogue.video_id}"
    for origins, answered in (([partner.origin], True), (["https://elsewhere.example"], False)):
        page = new_page(LAPTOP, fresh=True)
        page.route(f"{embed}*", serve_with(origins))
        page.goto(partner.festival((embed, 360, 640)))
        frame = page.frame_locator("iframe")
        frame.locator("[data-player][data-mounted]").wait_for(state="attached")
        page.evaluate("() => post(0, {context: 'player.js', version: '0.0.11', method: 'mute'})")
        page.wait_for_timeout(800)
        assert bool(page.evaluate("() => raw.length")) is answered
        assert embed_frame(page).evaluate("() => document.querySelector('video').muted") is answered


RECEIVER_CHECK = """async () => {
  const { Receiver, connect } = await import("/static/js/playerjs.js");
  const sent = [];
  const parent = { postMessage: (message, target) => sent.push({ message, target }) };
  const fakeWindow = (ancestors, referrer) => {
    const listeners = [];
    return {
      parent, listeners,
      location: { href: "https://live.example/embed/abc", ancestorOrigins: ancestors },
      document: { referrer },
      addEventListener: (type, listener) => listeners.push(listener),
    };
  };
  const calls = [];
  const methods = new Proxy({}, {
    get: (_, name) => (value) => {
      calls.push([name, value]);
      return name === "getVolume" ? 30 : undefined;
    },
  });
  const results = {};
  const message = (method, value, listener) =>
    JSON.stringify({ context: "player.js", version: "0.0.11", method, value, listener });
  const run = (name, ancestors, referrer, allowed, events, after = () => {}) => {
    sent.length = 0; calls.length = 0;
    const win = fakeWindow(ancestors, referrer);
    const receiver = new Receiver(methods, { win, allowed }).start();
    for (const [source, origin, data] of events) {
      win.listeners[0]({ source: source === "parent" ? parent : {}, origin, data });
    }
    after(receiver);
    results[name] = { sent: sent.map((s) => ({ target: s.target, ...JSON.parse(s.message) })),
                      calls: calls.map((c) => c[0]), origin: receiver.origin };
  };
  const partner = "https://festival.example";
  run("ancestor", [partner], "", null, [
    ["parent", partner, message("getVolume", null, "l1")],
    ["other", partner, message("play")],
    ["parent", "https://evil.example", message("play")],
    ["parent", partner, message("__proto__")],
    ["parent", partner, message("addEventListener", "error", "e1")],
    ["parent", partner, message("constructor")],
    ["parent", partner, "x".repeat(20000)],
    ["parent", partner, JSON.stringify({ context: "other", method: "play" })],
  ]);
  const referrer = partner + "/programme?day=1";
  run("referrer", undefined, referrer, null, [["parent", partner, message("pause")]]);
  run("unknown", undefined, "", null, [["parent", partner, message("getVolume", null, "l2")]]);
  run("refused", [partner], "", ["https://town.example"], [["parent", partner, message("play")]]);
  const both = ["https://town.example", partner];
  run("listed", [partner], "", both, [["parent", partner, message("play")]]);
  run("sandboxed", ["null"], "", null, [["parent", "null", message("play")]]);
  // The same listener twice (a double click on "subscribe"), then more listeners than kept.
  const many = Array.from({ length: 40 }, (_, i) => message("addEventListener", "pause", `m${i}`));
  run("listeners", [partner], "", null, [
    ["parent", partner, message("addEventListener", "play", "p1")],
    ["parent", partner, message("addEventListener", "play", "p1")],
    ["parent", partner, message("addEventListener", "nonsense", "n1")],
    ...many.map((data) => ["parent", partner, data]),
    ["parent", partner, message("removeEventListener", "pause", "m0")],
  ], (receiver) => {
    receiver.emit("play");
    receiver.emit("pause");
    receiver.emit("nonsense");
  });
  run("stopped", [partner], "", null, [["parent", partner, message("addEventListener", "play")]],
    (receiver) => { receiver.stop(); receiver.emit("play"); });
  return results;
}"""


def test_messages_go_to_the_framing_page_only_never_to_anyone(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """The receiver, with a stand-in window: what it posts, to whom, and what it obeys."""
    page = new_page()
    page.goto(f"{catalogue.url}/static/js/playerjs.js")
    results = page.evaluate(RECEIVER_CHECK)
    partner_origin = "https://festival.example"
    targets = {s["target"] for r in results.values() for s in r["sent"]}
    assert "*" not in targets
    assert targets == {partner_origin}

    ancestor = results["ancestor"]
    assert ancestor["origin"] == partner_origin
    assert [s["event"] for s in ancestor["sent"]] == ["ready", "getVolume", "error"]
    assert ancestor["sent"][1] == {
        "target": partner_origin,
        "context": "player.js",
        "version": "0.0.11",
        "event": "getVolume",
        "value": 30,
        "listener": "l1",
    }
    # Another window's play, another origin's play, a name off the list: not obeyed.
    assert ancestor["calls"] == ["getVolume"]
    assert ancestor["sent"][2]["value"]["code"] == 2
    assert ancestor["sent"][2]["listener"] == "e1"

    assert results["referrer"]["origin"] == partner_origin
    assert results["referrer"]["calls"] == ["pause"]
    # Not known from the frame: learnt from the framing page's first message, vouched for by
    # the browser; ready follows, then the answer.
    unknown = results["unknown"]
    assert [s["event"] for s in unknown["sent"]] == ["ready", "getVolume"]
    assert results["refused"] == {"sent": [], "calls": [], "origin": None}
    assert results["listed"]["calls"] == ["play"]
    assert results["sandboxed"] == {"sent": [], "calls": [], "origin": None}
    events = [s["event"] for s in results["listeners"]["sent"]]
    assert events.count("play") == 1
    assert events.count("pause") == 31, "32 kept, then one removed"
    assert "nonsense" not in events
    assert [s["event"] for s in results["stopped"]["sent"]] == ["ready"]


HOSTILE_VALUES = """async () => {
  const send = (method, value) =>
    post(0, { context: "player.js", version: "0.0.11", method, value });
  const results = [];
  for (const [method, value] of [
    ["setVolume", "loud"], ["setVolume", 1e308], ["setVolume", -40], ["setVolume", "25"],
    ["setVolume", { valueOf: 1 }], ["setCurrentTime", -50], ["setCurrentTime", "soon"],
    ["setCurrentTime", 1e308], ["setLoop", "yes"], ["setLoop", "true"], ["setLoop", 1],
  ]) {
    send(method, value);
    // A seek waits for the media's metadata (the first one gives the media its source).
    await new Promise((resolve) => setTimeout(resolve, method === "setCurrentTime" ? 1000 : 150));
    results.push([method, await ask(0, "getVolume"), await ask(0, "getCurrentTime"),
                  await ask(0, "getLoop")]);
  }
  return results;
}"""


def test_hostile_values_change_nothing_or_stay_in_range(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    page.goto(partner.festival((f"{catalogue.url}/embed/{catalogue.audio_id}", 166, 640)))
    wait_heard(page, "ready")
    results = page.evaluate(HOSTILE_VALUES)
    volumes = [round(volume) for _, volume, _, _ in results]
    assert volumes[:5] == [100, 100, 0, 25, 25]
    times = [seconds for method, _, seconds, _ in results if method == "setCurrentTime"]
    assert times[0] == 0 and times[1] == 0
    assert 5 < times[2] < 6.05, "the end, not past it"
    assert [loop for method, _, _, loop in results if method == "setLoop"] == [False, True, False]
    assert page.js_errors == []
