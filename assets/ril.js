/*
 * ril_dash page scripts, shared part. Dash loads the assets in alphabetical order, so this file
 * runs before ril_annotate.js and ril_viewer.js; they may call it at any time.
 *
 * window.rilPage: the open slice viewer.
 *  - Component ids: the viewer page writes {"ids": {name: id}} into the data-ril-config
 *    attribute of its root element (ril_dash/ui/pages/slice_viewer.py, from ril_dash/ui/ids.py).
 *    The scripts find elements by those names, rilPage.el("graph"), and spell no id themselves.
 *  - Lifecycle: everything a script hangs on window or document while a viewer is open goes
 *    through rilPage.listen(target, type, fn, options), from an rilPage.onOpen(fn) hook; timers
 *    through rilPage.later(fn, ms). When the viewer's root element leaves the document
 *    (navigation inside the app), those listeners are removed, the timers cleared and the
 *    rilPage.onLeave(fn) hooks run; a viewer opened again starts with one set of listeners.
 *  - Status line: rilPage.problem(key, text) shows a discreet message over the image (a failed
 *    request: what failed, why, and that it is retried); rilPage.solved(key) takes it away.
 *    rilPage.reason(failure) turns a refused Response or a network error into words.
 *
 *  - Keys: rilPage.typing(target) tells whether a key event belongs to a text box (typing goes
 *    there); otherwise it belongs to the viewer, also when a radio button, check box, slider or
 *    button has the focus after a click (they must not keep the arrow keys). A mouse-down on
 *    the image gives the keyboard back to the viewer; a number box gives it back once its
 *    value is entered.
 *
 * window.rilLayers: the layers of the image (see "layers" below).
 */
(function () {
    "use strict";

    /* ---- the open viewer ------------------------------------------------------------- */
    var opened = null;       // {root, ids, listeners, timers, leaveHooks, observer}
    var openHooks = [];
    var problems = new Map();

    /* The open viewer's session, opened on first use after its root element appeared; null
       while no viewer is on the page. */
    function session() {
        if (opened && opened.root.isConnected) { return opened; }  // one viewer at a time
        if (opened) { leave(); }
        var root = document.querySelector("[data-ril-config]");
        if (!root) { return null; }
        var config = JSON.parse(root.getAttribute("data-ril-config"));
        opened = {root: root, ids: config.ids, listeners: [], timers: new Set(), leaveHooks: []};
        opened.observer = new MutationObserver(function () {
            if (opened && !opened.root.isConnected) { leave(); }
        });
        opened.observer.observe(document.body, {childList: true, subtree: true});
        problems = new Map();
        openHooks.forEach(function (fn) { fn(); });
        return opened;
    }
    function leave() {
        var s = opened;
        opened = null;
        s.observer.disconnect();
        s.listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
        s.timers.forEach(function (t) { clearTimeout(t); });
        s.leaveHooks.forEach(function (fn) { fn(); });
        problems = new Map();
    }
    function listen(target, type, fn, options) {
        var s = session();
        if (!s) { return; }
        target.addEventListener(type, fn, options);
        s.listeners.push([target, type, fn, options]);
    }
    function later(fn, ms) {
        var s = session();
        if (!s) { return null; }
        var t = setTimeout(function () { s.timers.delete(t); fn(); }, ms);
        s.timers.add(t);
        return t;
    }
    function id(name) {
        var s = session();
        if (s && !(name in s.ids)) { throw new Error("ril: no component id named " + name); }
        return s ? s.ids[name] : null;
    }
    function el(name) {
        var i = id(name);
        return i ? document.getElementById(i) : null;
    }

    /* ---- keys ------------------------------------------------------------------------ */
    var TEXT_INPUTS = ["text", "search", "email", "password", "url", "tel", "number", "date",
                       "time", "datetime-local", "month", "week"];
    function typing(target) {
        if (!target || !target.tagName) { return false; }
        var tag = target.tagName;
        if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) { return true; }
        return tag === "INPUT" && TEXT_INPUTS.indexOf((target.type || "text").toLowerCase()) >= 0;
    }
    openHooks.push(function () {
        listen(document, "mousedown", function (ev) {
            var port = el("viewport");
            if (port && port.contains(ev.target) && document.activeElement !== port) {
                port.focus({preventScroll: true});
            }
        }, true);
        listen(document, "change", function (ev) {
            var t = ev.target;
            if (t && t.tagName === "INPUT" && t.type === "number" && document.activeElement === t) {
                t.blur();  // the value is entered: the arrow keys go back to the slices
            }
        }, true);
    });

    /* ---- status line ----------------------------------------------------------------- */
    function showProblems() {
        var line = el("status");
        if (!line) { return; }
        var texts = Array.from(problems.values());
        line.textContent = texts.join("\n");
        line.hidden = !texts.length;
    }
    function problem(key, text) {
        if (!session()) { return; }
        problems.set(key, text);
        showProblems();
    }
    function solved(key) {
        if (problems.delete(key)) { showProblems(); }
    }
    /* A promise of the words for a failed request: the server's JSON error or its status for a
       refused Response, "server unreachable" when no answer came (fetch rejects with a
       TypeError), else what went wrong reading the answer. */
    function reason(failure) {
        if (!failure || typeof failure.status !== "number") {
            return Promise.resolve(!failure || failure instanceof TypeError ? "server unreachable"
                : "its answer could not be read (" + failure.message + ")");
        }
        var status = "the server answered " + failure.status +
            (failure.statusText ? " " + failure.statusText : "");
        var json = (failure.headers.get("Content-Type") || "").indexOf("json") >= 0;
        if (!json || failure.bodyUsed) { return Promise.resolve(status); }
        return failure.json().then(function (body) { return (body && body.error) || status; },
                                    function () { return status; });
    }
    /* Wait before retrying a request that failed `attempt` times: 1 s, 2 s, 4 s … at most 15 s. */
    function backoff(attempt) { return Math.min(15000, 1000 * Math.pow(2, Math.max(0, attempt - 1))); }

    window.rilPage = {
        session: session,
        onOpen: function (fn) { openHooks.push(fn); },
        onLeave: function (fn) { var s = session(); if (s) { s.leaveHooks.push(fn); } },
        listen: listen,
        later: later,
        id: id,
        el: el,
        problem: problem,
        solved: solved,
        reason: reason,
        backoff: backoff,
        typing: typing,
        /* for tests: what is registered now */
        state: function () {
            return {open: !!opened, listeners: opened ? opened.listeners.length : 0,
                    timers: opened ? opened.timers.size : 0, problems: Array.from(problems.values())};
        }
    };

    /* ---- layers ---------------------------------------------------------------------- *
     * The image on screen is a stack of plotly image traces, one per layer, bottom to top by
     * `order`, followed by one scatter trace of point markers. A layer is
     *   name     "image", "roi", …
     *   order    its place in the stack (its trace index is its rank: rilViewer.trace(name))
     *   opacity  the trace's opacity, 0–1;  visible: whether the trace is drawn
     *   palette  how its values become colours; the layer's own requests pass it to the server
     *   (no trace takes plotly's hover: the cursor read-out follows the axes, ril_viewer.js)
     *   cache    a SourceCache: data URLs by slice index, full resolution or from a stack of
     *            low-resolution ones (factor f: a pixel covers f × f voxels)
     * ril_viewer.js builds the figure from the registry and, when a slice is shown, restyles the
     * layers whose source, opacity or visibility changed; a layer without a source for the
     * slice shows nothing (the image layer then keeps the slice on screen until it has one).
     * Registered now: "image" (order 0, ril_viewer.js: the grey slice, windowed by the server)
     * and "roi" (order 10, ril_annotate.js: the ROI overlay, RGBA PNGs coloured by the server).
     *
     * To add a model draft or a heat map, register it when its script loads:
     *     var heat = rilLayers.register({name: "heatmap", order: 30, opacity: 0.5,
     *                                    palette: "inferno"});
     * then put what its requests bring into heat.cache (put(i, dataUrl) for a slice, or
     * setStack(images, factor) for the low-resolution stack), clear() it when its view changes
     * (rilPage/rilViewer tell the plane and frame), and call rilViewer.refresh();
     * rilLayers.set("heatmap", {opacity: 0.2}) or {visible: false} restyles it without a request.
     * A layer registered while a series is open appears when the next view is configured.
     * -------------------------------------------------------------------------------- */
    function SourceCache(limit) {
        this.limit = limit || 0;   // the most full-resolution sources kept (0: no limit)
        this.clear();
    }
    SourceCache.prototype.clear = function () { this.full = new Map(); this.stack = null; this.factor = 1; };
    SourceCache.prototype.has = function (i) { return this.full.has(i); };
    SourceCache.prototype.put = function (i, src) {
        this.full.delete(i);
        this.full.set(i, src);
        if (this.limit && this.full.size > this.limit) { this.full.delete(this.full.keys().next().value); }
    };
    SourceCache.prototype.drop = function (i) { this.full.delete(i); };
    SourceCache.prototype.setStack = function (images, factor) { this.stack = images; this.factor = factor; };
    /* {src, f} for slice i ("" src: known to hold nothing), or null when nothing is cached. */
    SourceCache.prototype.get = function (i) {
        if (this.full.has(i)) { return {src: this.full.get(i), f: 1}; }
        if (this.stack && this.stack[i]) { return {src: this.stack[i], f: this.factor}; }
        return null;
    };

    var layers = [];
    function register(spec) {
        var layer = Object.assign({opacity: 1, visible: true, palette: null,
                                   cache: new SourceCache(spec.limit)}, spec);
        layers = layers.filter(function (l) { return l.name !== layer.name; }).concat([layer]);
        layers.sort(function (a, b) { return a.order - b.order; });
        return layer;
    }
    function find(name) {
        return layers.filter(function (l) { return l.name === name; })[0] || null;
    }
    window.rilLayers = {
        register: register,
        get: find,
        list: function () { return layers.slice(); },
        set: function (name, props) {
            Object.assign(find(name), props);
            if (window.rilViewer) { window.rilViewer.refresh(); }
        },
        SourceCache: SourceCache
    };
}());
