// gatehouse session.js: warns before the idle sign-out, keeps every tab of
// this site in step, and sends each tab to the login page (with the reason
// and its own URL) when the session ends. No dependencies, no inline code,
// no eval, no style attributes: it runs under `script-src 'self'`.
//
// The server wraps this file as `(function (C) { ... })({config})`; C holds
// prefix, warning (ms), poll (ms), strings and lang.
"use strict";

// The tag in the page and the injected one: run once.
if (window.gatehouseSession) {
  return;
}
window.gatehouseSession = { version: 1 };

var KEY = "gatehouse.session";
var LOCK = "gatehouse.session.check";
// A re-check triggered by an event (tab visible again, network back) is
// skipped when any tab of this browser checked this recently.
var FRESH = 5000;
// After a failed status request (gateway unreachable, 5xx).
var RETRY = 15000;

var state = null; // the newest status any tab of this browser has seen
// A live session was confirmed since this page loaded: only then does an
// ended session send this tab to the login page (a public page carrying
// the tag is left alone).
var live = false;
var loadedAt = Date.now();
var leaving = false;
var timer = null;
var ticker = null;
var checking = false;
var dialog = null;
var restoreFocus = null;
var announced = -1;
var locks = !!(navigator.locks && typeof navigator.locks.request === "function");
// One tab of the browser leads: the one holding the leader lock, handed on
// by the browser when it closes. Without Web Locks every tab may poll.
var leader = !locks;
var jitter = locks ? 0 : Math.floor(Math.random() * C.poll * 0.2);
var chan = null;
try {
  chan = typeof BroadcastChannel === "function" ? new BroadcastChannel(KEY) : null;
} catch (e) {
  chan = null;
}

function now() {
  return Date.now();
}

function parse(text) {
  try {
    var s = JSON.parse(text);
    return s && typeof s.at === "number" ? s : null;
  } catch (e) {
    return null;
  }
}

function stored() {
  try {
    return parse(window.localStorage.getItem(KEY));
  } catch (e) {
    return null;
  }
}

function store(s) {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(s));
  } catch (e) {
    // Storage blocked: the BroadcastChannel still keeps tabs in step.
  }
}

// Takes `s` if it is news: a newer check, or the end of the session.
function adopt(s) {
  if (!s || typeof s.at !== "number") {
    return false;
  }
  // The newest word wins; the check lock keeps two tabs from asking at
  // once, so an older answer arriving late is stale.
  if (state && s.at < state.at) {
    return false;
  }
  state = s;
  return true;
}

function publish(s) {
  adopt(s);
  store(s);
  if (chan) {
    try {
      chan.postMessage(s);
    } catch (e) {
      // A closed channel: storage events still carry it.
    }
  }
  apply();
}

function received(s) {
  if (adopt(s)) {
    apply();
  }
}

function warning(s) {
  // Never warn for more than half the idle timeout, so a short timeout
  // does not show the dialog on every page load.
  return Math.max(0, Math.min(C.warning, (s.idleTimeout || 0) / 2));
}

// When the session ends unless something happens: idle or absolute.
function end(s) {
  return Math.min(s.idle, s.abs);
}

function warnAt(s) {
  return end(s) - warning(s);
}

// When this browser next needs to ask the gateway, given the newest status.
function nextCheck(s) {
  if (!s) {
    return now();
  }
  if (s.ended) {
    return Infinity;
  }
  // The routine poll is the leader's alone (or, without Web Locks, every
  // tab's at its own random point after the last check, so the first
  // answer reaches the others before they ask).
  var t = leader ? s.at + C.poll + jitter : Infinity;
  // What is about to happen is watched by the leader and by any tab the
  // user can see (a hidden leader's timers may be throttled).
  if (leader || document.visibilityState === "visible") {
    var w = warnAt(s);
    if (warning(s) > 0 && w > s.at && w < t) {
      t = w;
    }
    [s.idle, s.abs].forEach(function (d) {
      // A deadline under a second away (the gateway counts whole seconds).
      var at = d > s.at ? d : s.at + 1000;
      if (at < t) {
        t = at;
      }
    });
  }
  if (s.failed && s.failed + RETRY > t && t !== Infinity) {
    t = s.failed + RETRY;
  }
  return t;
}

function statusFrom(body, at) {
  return {
    at: at,
    user: String(body.user || ""),
    idle: at + 1000 * Number(body.idle_expires_in || 0),
    abs: at + 1000 * Number(body.absolute_expires_in || 0),
    idleTimeout: 1000 * Number(body.idle_timeout || 0),
    ended: null
  };
}

// Handles a /session or /session/extend answer; resolves when published.
function handle(promise) {
  var at = now();
  return promise.then(
    function (resp) {
      if (resp.status === 200) {
        return resp.json().then(function (body) {
          publish(statusFrom(body, at));
        });
      }
      if (resp.status === 401) {
        return resp.json().then(
          function (body) {
            publish({ at: at, ended: String((body && body.reason) || "") || "unknown" });
          },
          function () {
            publish({ at: at, ended: "unknown" });
          }
        );
      }
      failed(at);
    },
    function () {
      failed(at);
    }
  );
}

function failed(at) {
  if (state && !state.ended) {
    var s = {};
    for (var k in state) {
      if (Object.prototype.hasOwnProperty.call(state, k)) {
        s[k] = state[k];
      }
    }
    s.failed = at;
    publish(s);
  } else {
    schedule(at + RETRY);
  }
}

function get(path, init) {
  init = init || {};
  init.credentials = "same-origin";
  init.cache = "no-store";
  init.headers = init.headers || {};
  init.headers.Accept = "application/json";
  return window.fetch(C.prefix + path, init);
}

// Runs `fn(done)` while holding the browser-wide check lock (Web Locks);
// without them, after a random pause so tabs woken together rarely collide.
function exclusive(fn) {
  if (locks) {
    navigator.locks
      .request(LOCK, function () {
        return new Promise(function (resolve) {
          fn(resolve);
        });
      })
      .catch(function () {});
    return;
  }
  setTimeout(function () {
    fn(function () {});
  }, Math.floor(Math.random() * 300));
}

// Asks the gateway unless another tab already has the answer: `due(s)` says
// whether status `s` still needs a check.
function check(due) {
  if (checking || leaving) {
    return;
  }
  checking = true;
  exclusive(function (done) {
    adopt(stored());
    if (!due(state)) {
      checking = false;
      done();
      apply();
      return;
    }
    handle(get("/session")).then(function () {
      checking = false;
      done();
    });
  });
}

function scheduledCheck() {
  check(function (s) {
    return now() >= nextCheck(s);
  });
}

function eventCheck() {
  var since = now() - FRESH;
  check(function (s) {
    return !s || s.ended || s.at < since;
  });
}

function schedule(t) {
  if (timer) {
    clearTimeout(timer);
  }
  timer = null;
  if (t === Infinity || leaving) {
    return;
  }
  // Capped so a long sleep of the device is noticed within a minute.
  var delay = Math.min(Math.max(0, t - now()), C.poll);
  timer = setTimeout(scheduledCheck, delay);
}

function loginUrl(reason) {
  var rd = window.location.pathname + window.location.search;
  var q = [];
  if (reason && reason !== "unknown") {
    q.push("reason=" + encodeURIComponent(reason));
  }
  q.push("rd=" + encodeURIComponent(rd));
  return C.prefix + "/login?" + q.join("&");
}

function apply() {
  var s = state;
  if (!s) {
    return;
  }
  if (s.ended) {
    hide();
    schedule(Infinity);
    if (live && !leaving) {
      leaving = true;
      window.location.assign(loginUrl(s.ended));
    }
    return;
  }
  if (s.at >= loadedAt) {
    live = true;
  }
  var w = warnAt(s);
  if (warning(s) > 0 && s.at >= w && now() < end(s) + 1000) {
    show();
  } else {
    hide();
  }
  schedule(nextCheck(s));
}

// ---- the dialog -------------------------------------------------------

function css(el, props) {
  // CSSOM, not a style attribute: allowed under a strict style-src.
  for (var name in props) {
    if (Object.prototype.hasOwnProperty.call(props, name)) {
      el.style.setProperty(name, props[name], "important");
    }
  }
}

function node(tag, attrs, text) {
  var el = document.createElement(tag);
  for (var name in attrs) {
    if (Object.prototype.hasOwnProperty.call(attrs, name)) {
      el.setAttribute(name, attrs[name]);
    }
  }
  if (text) {
    el.textContent = text;
  }
  return el;
}

function button(id, label, primary, onclick) {
  var b = node("button", { type: "button", id: id }, label);
  css(b, {
    font: "inherit",
    padding: "0.5em 1em",
    margin: "0 0.5em 0 0",
    "border-radius": "6px",
    border: "2px solid #1d4ed8",
    background: primary ? "#1d4ed8" : "#ffffff",
    color: primary ? "#ffffff" : "#1d4ed8",
    cursor: "pointer"
  });
  b.addEventListener("click", onclick);
  return b;
}

function build() {
  var S = C.strings;
  var backdrop = node("div", { id: "gatehouse-session", lang: C.lang });
  css(backdrop, {
    position: "fixed",
    inset: "0",
    display: "flex",
    "align-items": "center",
    "justify-content": "center",
    background: "rgba(0, 0, 0, 0.45)",
    "z-index": "2147483647",
    margin: "0",
    padding: "1em"
  });
  var box = node("div", {
    id: "gatehouse-session-dialog",
    role: "alertdialog",
    "aria-modal": "true",
    "aria-labelledby": "gatehouse-session-title",
    "aria-describedby": "gatehouse-session-message",
    tabindex: "-1"
  });
  css(box, {
    background: "#ffffff",
    color: "#111827",
    "max-width": "28em",
    padding: "1.5em",
    "border-radius": "10px",
    "box-shadow": "0 10px 30px rgba(0, 0, 0, 0.3)",
    font: "16px/1.5 system-ui, sans-serif",
    "text-align": "left"
  });
  var title = node("h2", { id: "gatehouse-session-title" }, S.title);
  css(title, { font: "bold 1.25em/1.3 system-ui, sans-serif", margin: "0 0 0.5em 0", color: "#111827" });
  var message = node("p", { id: "gatehouse-session-message" });
  css(message, { margin: "0 0 1em 0" });
  var parts = S.message.split("{time}");
  message.appendChild(document.createTextNode(parts[0] || ""));
  // Seen ticking; heard through the live region below instead.
  var count = node("strong", { id: "gatehouse-session-countdown", "aria-hidden": "true" });
  message.appendChild(count);
  message.appendChild(document.createTextNode(parts[1] || ""));
  // Read out now and then, not every second.
  var region = node("p", { id: "gatehouse-session-live", "aria-live": "assertive", "aria-atomic": "true" });
  css(region, {
    position: "absolute",
    width: "1px",
    height: "1px",
    overflow: "hidden",
    clip: "rect(0 0 0 0)",
    "white-space": "nowrap"
  });
  var stay = button("gatehouse-session-stay", S.stay, true, stayClicked);
  var out = button("gatehouse-session-signout", S.sign_out, false, signOutClicked);
  box.appendChild(title);
  box.appendChild(message);
  box.appendChild(region);
  box.appendChild(stay);
  box.appendChild(out);
  box.addEventListener("keydown", function (e) {
    // Keep Tab inside the dialog.
    if (e.key === "Tab") {
      var first = stay;
      var last = out;
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  });
  backdrop.appendChild(box);
  return { root: backdrop, count: count, live: region, stay: stay, out: out };
}

function clock(ms) {
  var total = Math.max(0, Math.ceil(ms / 1000));
  var m = Math.floor(total / 60);
  var sec = total % 60;
  return m + ":" + (sec < 10 ? "0" : "") + sec;
}

function spoken(ms) {
  var total = Math.max(0, Math.ceil(ms / 1000));
  var S = C.strings;
  if (total >= 60) {
    var m = Math.round(total / 60);
    return (m === 1 ? S.minute : S.minutes).replace("{n}", String(m));
  }
  return (total === 1 ? S.second : S.seconds).replace("{n}", String(total));
}

function render() {
  if (!dialog || !state || state.ended) {
    return;
  }
  var left = end(state) - now();
  dialog.count.textContent = clock(left);
  // Staying cannot move the absolute timeout.
  var final = state.abs <= state.idle;
  css(dialog.stay, { display: final ? "none" : "inline-block" });
  // Announce on opening, at each whole minute, and at 30 and 10 seconds.
  var secs = Math.max(0, Math.ceil(left / 1000));
  var mark = secs > 60 ? Math.ceil(secs / 60) * 60 : secs > 30 ? 60 : secs > 10 ? 30 : 10;
  if (announced === -1 || mark < announced) {
    announced = mark;
    dialog.live.textContent = C.strings.message.replace("{time}", spoken(left));
  }
}

function show() {
  if (!document.body) {
    return;
  }
  if (!dialog) {
    dialog = build();
  }
  if (!dialog.root.parentNode) {
    announced = -1;
    restoreFocus = document.activeElement;
    document.body.appendChild(dialog.root);
    render();
    (state.abs <= state.idle ? dialog.out : dialog.stay).focus();
  }
  render();
  if (!ticker) {
    ticker = setInterval(render, 1000);
  }
}

function hide() {
  if (ticker) {
    clearInterval(ticker);
    ticker = null;
  }
  if (dialog && dialog.root.parentNode) {
    var hadFocus = dialog.root.contains(document.activeElement);
    dialog.root.parentNode.removeChild(dialog.root);
    if (hadFocus && restoreFocus && document.contains(restoreFocus) && restoreFocus.focus) {
      restoreFocus.focus();
    }
  }
  restoreFocus = null;
}

function stayClicked() {
  handle(get("/session/extend", { method: "POST", headers: { "X-Gatehouse-Extend": "1" } }));
}

function signOutClicked() {
  // The logout form's own flow: POST /logout with its CSRF token, which
  // /session hands to same-origin scripts only.
  get("/session")
    .then(function (resp) {
      return resp.status === 200 ? resp.json() : null;
    })
    .then(function (body) {
      if (!body || !body.logout_token) {
        return null;
      }
      return window.fetch(C.prefix + "/logout", {
        method: "POST",
        credentials: "same-origin",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "csrf_token=" + encodeURIComponent(body.logout_token)
      });
    })
    .then(
      function () {
        publish({ at: now(), ended: "logout" });
      },
      function () {
        publish({ at: now(), ended: "logout" });
      }
    );
}

// ---- wiring -----------------------------------------------------------

if (locks) {
  navigator.locks
    .request(KEY + ".leader", function () {
      leader = true;
      apply();
      // Held until this page goes away.
      return new Promise(function () {});
    })
    .catch(function () {});
}

if (chan) {
  chan.onmessage = function (e) {
    received(e.data);
  };
} else {
  window.addEventListener("storage", function (e) {
    if (e.key === KEY) {
      received(parse(e.newValue));
    }
  });
}

document.addEventListener("visibilitychange", function () {
  if (document.visibilityState === "visible") {
    apply();
    eventCheck();
  }
});
window.addEventListener("online", eventCheck);
window.addEventListener("pageshow", function (e) {
  if (e.persisted) {
    leaving = false;
    eventCheck();
  }
});

// Start from what other tabs know; a session that ended before this page
// loaded says nothing about this one (it may be a new sign-in).
var known = stored();
if (known && !known.ended) {
  adopt(known);
  apply();
} else {
  check(function () {
    return true;
  });
}
