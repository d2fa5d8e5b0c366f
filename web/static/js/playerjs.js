// The embed's side of player.js, Embedly's open protocol for driving a player in an iframe
// (node_modules/player.js/SPEC.rst; the npm package `player.js` is the client partner sites
// use). The page framing /embed/{id} posts JSON such as
//   {"context": "player.js", "version": "0.0.11", "method": "play"}
// and hears back the events it listened to, each echoing the client's `listener` value, and
// the answers of the getters, named after the method.
//
// Only the framing page is talked to: messages are posted to its origin alone, never to "*"
// (a player's position and state are nobody else's business), and only messages from that
// window are obeyed. When the player's configuration lists the sites it may be embedded on
// (`embed_origins`), any other site gets no answer and its messages are ignored.

export const CONTEXT = "player.js";
// The protocol version the npm client (0.1.0) writes.
export const VERSION = "0.0.11";
export const EVENTS = Object.freeze([
  "ready",
  "play",
  "pause",
  "ended",
  "timeupdate",
  "progress",
  "seeked",
  "error",
]);
export const METHODS = Object.freeze([
  "play",
  "pause",
  "getPaused",
  "mute",
  "unmute",
  "getMuted",
  "setVolume",
  "getVolume",
  "getDuration",
  "setCurrentTime",
  "getCurrentTime",
  "setLoop",
  "getLoop",
  "addEventListener",
  "removeEventListener",
]);
// The spec's error codes.
export const UNDEFINED_ERROR = -1;
export const NOT_PLAYABLE = 1;
export const NOT_SUPPORTED = 2;
// A page may only hurt itself with more, but a loop adding listeners should not grow memory.
const MAX_LISTENERS = 32;
const MAX_LISTENER_LENGTH = 200;
const MAX_MESSAGE_LENGTH = 10_000;

/** The origin of the page framing `win`, or null when it is not framed or cannot be known:
 * `location.ancestorOrigins` where the browser has it, else the referrer (the framing page,
 * reduced to its origin by the default referrer policy). */
export function embedderOrigin(win = window) {
  if (win.parent === win) return null;
  const ancestors = win.location.ancestorOrigins;
  if (ancestors && ancestors.length > 0) return usableOrigin(ancestors[0]);
  try {
    return usableOrigin(new URL(win.document.referrer).origin);
  } catch {
    return null;
  }
}

/** An origin messages can be addressed to: a sandboxed or file: page's is "null". */
function usableOrigin(origin) {
  return typeof origin === "string" && /^https?:\/\/[^/]+$/.test(origin) ? origin : null;
}

/** Whether `origin` may embed the player: `allowed` is a list of origins, or null for any. */
export function isAllowed(origin, allowed) {
  if (usableOrigin(origin) === null) return false;
  return allowed === null || allowed === undefined || (Array.isArray(allowed) && allowed.includes(origin));
}

/** The message of a postMessage event as an object, or null when it is not player.js's. */
function parse(data) {
  let message = data;
  if (typeof data === "string") {
    if (data.length > MAX_MESSAGE_LENGTH) return null;
    try {
      message = JSON.parse(data);
    } catch {
      return null;
    }
  }
  if (!message || typeof message !== "object" || Array.isArray(message)) return null;
  if (message.context !== CONTEXT || typeof message.method !== "string") return null;
  return message;
}

/** What a client may name its listener with; anything else counts as no name. */
function listenerOf(message) {
  const value = message.listener;
  if (typeof value === "string" && value.length <= MAX_LISTENER_LENGTH) return value;
  if (typeof value === "number" && Number.isFinite(value)) return value;
  return null;
}

/**
 * The protocol: obeys `methods` (a function per method of METHODS but the listeners'; a
 * getter's return value is sent back) and sends events to the listeners the framing page
 * added. `win` is the embed's window (another object in tests).
 */
export class Receiver {
  #win;
  #allowed;
  #origin;
  #methods;
  #listeners = new Map();
  #abort = new AbortController();

  constructor(methods, { win = window, allowed = null } = {}) {
    this.#methods = methods;
    this.#win = win;
    this.#allowed = allowed;
    const origin = embedderOrigin(win);
    this.#origin = isAllowed(origin, allowed) ? origin : null;
  }

  /** Where messages go; null while no allowed framing page is known (then none is sent). */
  get origin() {
    return this.#origin;
  }

  /** Aborted when the receiver stops: for the listeners that feed it events. */
  get signal() {
    return this.#abort.signal;
  }

  /** Listen to the framing page and tell it the player is ready. */
  start() {
    if (this.#win.parent === this.#win || this.#abort.signal.aborted) return this;
    this.#win.addEventListener("message", (event) => this.receive(event), {
      signal: this.#abort.signal,
    });
    this.ready();
    return this;
  }

  stop() {
    this.#abort.abort();
    this.#listeners.clear();
  }

  receive(event) {
    // Only the framing page drives the player: not another frame of it, nor a window this
    // one opened, whatever origin they claim in their message.
    if (event.source !== this.#win.parent) return;
    if (!isAllowed(event.origin, this.#allowed)) return;
    if (this.#origin !== null && event.origin !== this.#origin) return;
    const message = parse(event.data);
    if (message === null) return;
    if (this.#origin === null) {
      // Neither ancestorOrigins nor a referrer told who frames us (a page whose referrer
      // policy is no-referrer, in a browser without ancestorOrigins); the window that just
      // wrote is the framing page, and the browser vouches for its origin.
      this.#origin = event.origin;
      this.ready();
    }
    this.#obey(message);
  }

  #obey(message) {
    const { method, value } = message;
    const listener = listenerOf(message);
    if (!METHODS.includes(method)) {
      this.emit("error", { code: NOT_SUPPORTED, msg: `Method not supported: ${method.slice(0, 40)}` });
    } else if (method === "addEventListener") {
      this.#listen(value, listener);
    } else if (method === "removeEventListener") {
      this.#forget(value, listener);
    } else if (method.startsWith("get")) {
      this.#post({ event: method, value: this.#methods[method](), listener });
    } else {
      this.#methods[method](value);
    }
  }

  #listen(event, listener) {
    if (!EVENTS.includes(event)) return;
    const listeners = this.#listeners.get(event) ?? [];
    if (!listeners.includes(listener) && listeners.length < MAX_LISTENERS) listeners.push(listener);
    this.#listeners.set(event, listeners);
    if (event === "ready") this.#post({ event, value: this.#readiness(), listener });
  }

  #forget(event, listener) {
    const listeners = this.#listeners.get(event);
    if (!listeners) return;
    // Without a listener named, every listener of the event goes (the spec's rule).
    const kept = listener === null ? [] : listeners.filter((known) => known !== listener);
    if (kept.length) this.#listeners.set(event, kept);
    else this.#listeners.delete(event);
  }

  /** Send `event` to each listener of it; false when nobody listens. */
  emit(event, value) {
    const listeners = this.#listeners.get(event);
    if (!listeners) return false;
    for (const listener of listeners) this.#post({ event, value, listener });
    return true;
  }

  /** "ready" goes out whether listened to or not: clients wait for it before sending. */
  ready() {
    this.#post({ event: "ready", value: this.#readiness() });
  }

  #readiness() {
    return { src: this.#win.location.href, events: [...EVENTS], methods: [...METHODS] };
  }

  #post({ event, value, listener = null }) {
    if (this.#origin === null || this.#abort.signal.aborted) return;
    const message = { context: CONTEXT, version: VERSION, event };
    if (value !== undefined && value !== null) message.value = value;
    if (listener !== null) message.listener = listener;
    // A string, as the client parses what it receives with JSON.parse.
    this.#win.parent.postMessage(JSON.stringify(message), this.#origin);
  }
}

/** A number from a message's value (a number, or a string of one); null for anything else. */
function numberOf(value) {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof number === "number" && Number.isFinite(number) ? number : null;
}

/** Where playback is, as timeupdate and seeked tell it. */
function position(player) {
  return { seconds: player.media.currentTime || 0, duration: player.duration() };
}

/** How much is loaded ahead of the playback position. */
function progress(player) {
  const { media } = player;
  const duration = player.duration();
  let loaded = 0;
  for (let index = 0; index < media.buffered.length; index += 1) {
    if (media.buffered.start(index) <= media.currentTime + 0.5) loaded = Math.max(loaded, media.buffered.end(index));
  }
  return { seconds: loaded, duration, percent: duration > 0 ? Math.min(1, loaded / duration) : 0 };
}

/** The methods, as the player (player.js's Player) carries them out. */
function methodsOf(player) {
  const { media } = player;
  return {
    play: () => player.play(),
    pause: () => player.pause(),
    getPaused: () => media.paused,
    mute: () => {
      media.muted = true;
    },
    unmute: () => {
      media.muted = false;
    },
    getMuted: () => media.muted,
    setVolume: (value) => {
      const volume = numberOf(value);
      if (volume !== null) media.volume = Math.min(100, Math.max(0, volume)) / 100;
    },
    getVolume: () => media.volume * 100,
    getDuration: () => player.duration(),
    setCurrentTime: (value) => {
      const seconds = numberOf(value);
      if (seconds !== null) player.seek(seconds, { load: true });
    },
    getCurrentTime: () => media.currentTime || 0,
    setLoop: (value) => {
      media.loop = value === true || value === "true";
    },
    getLoop: () => media.loop,
  };
}

/** Let the page framing this embed drive `player` (a Player of player.js) and hear it. */
export function connect(player, { win = window, allowed = null } = {}) {
  const receiver = new Receiver(methodsOf(player), { win, allowed });
  const { signal } = receiver;
  const relay = (type, event = type, value = () => undefined) => {
    player.media.addEventListener(type, () => receiver.emit(event, value()), { signal });
  };
  relay("play");
  relay("pause");
  relay("ended");
  relay("timeupdate", "timeupdate", () => position(player));
  relay("seeked", "seeked", () => position(player));
  relay("progress", "progress", () => progress(player));
  player.root.addEventListener(
    "cl-player:error",
    (event) => receiver.emit("error", event.detail.error),
    { signal },
  );
  return receiver.start();
}
