/* Embudo tracking snippet: page views, custom events, identify, and embedded forms.
   Dependency-free. Sends batches with navigator.sendBeacon to the Embudo server it was loaded
   from. Honours Do-Not-Track and, with data-require-consent="true", waits for
   embudo.consent(true) before storing an id or sending anything. */
(function () {
  "use strict";
  var w = window, d = document, n = navigator;
  var script = d.currentScript || d.querySelector("script[data-site-key]");
  if (!script || w.__embudoLoaded) return;
  w.__embudoLoaded = true;
  var key = script.getAttribute("data-site-key") || "";
  var base = script.src.replace(/\/t\.js(\?.*)?$/, "");
  var needConsent = script.getAttribute("data-require-consent") === "true";
  var autoPage = script.getAttribute("data-auto-page") !== "false";
  var dnt = n.doNotTrack === "1" || w.doNotTrack === "1" || n.msDoNotTrack === "1";
  var VID = "_embudo_vid", CONSENT = "_embudo_consent", LAST = "_embudo_last";
  var SESSION_IDLE = 30 * 60 * 1000;
  var queue = [], timer = null, pageSent = false;
  var api = w.embudo = w.embudo || {};
  var early = api.q || [];

  function get(k) { try { return w.localStorage.getItem(k); } catch (e) { return null; } }
  function set(k, v) { try { w.localStorage.setItem(k, v); } catch (e) { /* storage off */ } }
  function drop(k) { try { w.localStorage.removeItem(k); } catch (e) { /* storage off */ } }
  function cookie(k) {
    var m = d.cookie.match(new RegExp("(?:^|; )" + k + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(k, v, days) {
    d.cookie = k + "=" + encodeURIComponent(v) + "; path=/; max-age=" + days * 86400 +
      "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }
  function consented() {
    if (dnt) return false;
    return !needConsent || (get(CONSENT) || cookie(CONSENT)) === "yes";
  }
  function uuid() {
    var b = new Uint8Array(16), h = [], i;
    w.crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    for (i = 0; i < 16; i++) h.push((b[i] + 256).toString(16).slice(1));
    h = h.join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20);
  }
  function visitorId() {
    var v = cookie(VID) || get(VID);
    if (!v || !/^[A-Za-z0-9_-]{1,64}$/.test(v)) v = uuid().replace(/-/g, "");
    setCookie(VID, v, 395);
    set(VID, v);
    return v;
  }
  function newSession() {
    var now = Date.now(), last = parseInt(get(LAST) || "0", 10);
    set(LAST, String(now));
    return !last || now - last > SESSION_IDLE;
  }
  function send(events) {
    var body = JSON.stringify({ site_key: key, visitor_id: visitorId(), events: events });
    var url = base + "/t/collect";
    try {
      if (n.sendBeacon && n.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    } catch (e) { /* fall back to fetch */ }
    try {
      w.fetch(url, { method: "POST", body: body, keepalive: true, mode: "cors",
        credentials: "omit", headers: { "Content-Type": "text/plain" } });
    } catch (e) { /* nothing more to try */ }
  }
  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) send(queue.splice(0, 50));
  }
  function push(event) {
    if (!consented()) return;
    event.event_id = uuid();
    event.occurred_at = new Date().toISOString();
    queue.push(event);
    if (queue.length >= 20) flush();
    else if (!timer) timer = setTimeout(flush, 1000);
  }

  api.page = function (props) {
    var p = props || {};
    p.title = d.title;
    pageSent = true;
    push({ type: "page_view", url: location.href, referrer: d.referrer, properties: p,
      new_session: consented() ? newSession() : false });
  };
  api.track = function (name, props) {
    push({ type: String(name), url: location.href, properties: props || {} });
  };
  api.identify = function (traits) {
    var t = {}, names = ["first_name", "last_name", "phone", "job_title"], i;
    traits = traits || {};
    if (!traits.email) return;
    for (i = 0; i < names.length; i++) if (traits[names[i]]) t[names[i]] = String(traits[names[i]]);
    push({ type: "identify", email: String(traits.email), traits: t, url: location.href });
    flush();
  };
  api.consent = function (given) {
    set(CONSENT, given ? "yes" : "no");
    setCookie(CONSENT, given ? "yes" : "no", 395);
    if (!given) {
      queue = [];
      drop(VID);
      drop(LAST);
      setCookie(VID, "", -1);
    } else if (autoPage && !pageSent) {
      api.page();
    }
  };
  api.visitorId = function () { return consented() ? visitorId() : ""; };
  api.flush = flush;

  function enhance(form) {
    if (form.__embudo) return;
    form.__embudo = true;
    form.addEventListener("submit", function (event) {
      var data = new FormData(form), message = form.querySelector("[data-embudo-message]");
      event.preventDefault();
      if (consented()) data.set("_vid", visitorId());
      data.set("_url", location.href);
      data.set("_referrer", d.referrer);
      flush();
      w.fetch(form.action, { method: "POST", body: new URLSearchParams(data), mode: "cors",
        credentials: "omit", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
        .then(function (res) {
          var ok = res[0], j = res[1], text = j.message || "", k;
          if (ok && j.redirect) { location.href = j.redirect; return; }
          if (!ok && j.errors) {
            text = [];
            for (k in j.errors) text.push(j.errors[k].join(" "));
            text = text.join(" ");
          }
          if (message) message.textContent = text;
          if (ok) { form.reset(); form.setAttribute("data-embudo-sent", "true"); }
        })
        .catch(function () { form.submit(); });
    });
  }
  function start() {
    var forms = d.querySelectorAll("form[data-embudo-form]"), i;
    for (i = 0; i < forms.length; i++) enhance(forms[i]);
  }

  d.addEventListener("visibilitychange", function () {
    if (d.visibilityState === "hidden") flush();
  });
  w.addEventListener("pagehide", flush);
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", start);
  else start();
  if (autoPage) api.page();
  for (var i = 0; i < early.length; i++) {
    var call = early[i];
    if (api[call[0]]) api[call[0]].apply(api, Array.prototype.slice.call(call, 1));
  }
})();
