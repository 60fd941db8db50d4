/* Event Quality Monitor: Pixel mirror.
 *
 * Load it after the Meta Pixel snippet:
 *   <script src="http://127.0.0.1:8787/pixel-mirror.js" async></script>
 * Every fbq('track' | 'trackCustom' | 'trackSingle' | 'trackSingleCustom', ...) call is
 * passed to the Pixel unchanged and mirrored to the relay's /collect: event name,
 * eventID, custom data, the page URL, the _fbp/_fbc cookies, the user agent and the
 * time. Nothing else is read; the relay keeps only what the dashboard needs.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = script && script.src ? script.src.replace(/\/pixel-mirror\.js(\?.*)?$/, "/collect") : null;
  if (!endpoint || window.__eqmPixelMirror) return;
  window.__eqmPixelMirror = true;

  function cookie(name) {
    var found = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return found ? decodeURIComponent(found[1]) : undefined;
  }

  var initialised = [];  // pixel ids of the fbq('init', id) calls seen

  function pixelIds(fbq, single) {
    if (single) return [String(single)];
    try {
      var state = fbq.getState && fbq.getState();
      if (state && state.pixels && state.pixels.length) {
        return state.pixels.map(function (p) { return String(p.id); });
      }
    } catch (e) { /* fbevents.js not loaded yet */ }
    var ids = initialised.slice();
    (fbq.queue || []).forEach(function (call) {  // inits made before this script ran
      if (call && call[0] === "init" && ids.indexOf(String(call[1])) < 0) ids.push(String(call[1]));
    });
    return ids;
  }

  function mirror(fbq, args) {
    var command = args[0], single = null, name, data, options;
    if (command === "init" && initialised.indexOf(String(args[1])) < 0) {
      initialised.push(String(args[1]));
      return;
    }
    if (command === "track" || command === "trackCustom") {
      name = args[1]; data = args[2]; options = args[3];
    } else if (command === "trackSingle" || command === "trackSingleCustom") {
      single = args[1]; name = args[2]; data = args[3]; options = args[4];
    } else {
      return;
    }
    var payload = JSON.stringify({
      event_name: name,
      event_id: options && (options.eventID || options.event_id),
      custom_data: data || {},
      event_source_url: window.location.href,
      fbp: cookie("_fbp"),
      fbc: cookie("_fbc"),
      client_user_agent: navigator.userAgent,
      event_time: Math.floor(Date.now() / 1000),
      pixel_ids: pixelIds(fbq, single)
    });
    // text/plain: a simple request, no preflight; keepalive survives a page change.
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, payload)) return;
    fetch(endpoint, { method: "POST", body: payload, keepalive: true, mode: "no-cors" });
  }

  function wrap() {
    var original = window.fbq;
    if (typeof original !== "function") return false;
    if (original.__eqmMirrored) return true;
    var wrapped = function () {
      try { mirror(original, arguments); } catch (e) { /* never in the Pixel's way */ }
      // fbevents.js, once loaded, sets callMethod on whichever fbq it found (the stub
      // before this wrap, this wrapper after it); until then the stub queues the call
      // on the queue both share.
      var impl = original.callMethod ? original : wrapped.callMethod ? wrapped : null;
      if (impl) return impl.callMethod.apply(impl, arguments);
      return original.apply(this, arguments);
    };
    for (var key in original) {
      // queue, loaded, version, push: the same values (the queue is the same array).
      if (key !== "callMethod" && Object.prototype.hasOwnProperty.call(original, key)) {
        wrapped[key] = original[key];
      }
    }
    wrapped.__eqmMirrored = true;
    window.fbq = wrapped;
    if (window._fbq === original) window._fbq = wrapped;
    return true;
  }

  if (!wrap()) {
    var tries = 0;
    var timer = setInterval(function () {
      if (wrap() || ++tries > 200) clearInterval(timer);
    }, 50);
  }
})();
