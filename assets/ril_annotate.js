/*
 * ril_dash annotation layer, browser half (works with ril_viewer.js).
 *
 * - Tools draw with plotly's drawable shapes: the brush and eraser are `drawopenpath` strokes
 *   whose line width is the brush diameter on screen, the lasso is a `drawclosedpath`; fill and
 *   point tools use clicks. Each finished shape is sent to /ril/api/edit with the version the
 *   user sees, the server rasterises it exactly, saves, and the shape is removed; the overlay of
 *   the slice is then re-fetched. Edits are queued so strokes drawn quickly keep their order.
 * - Overlays (RGBA PNGs) are the "roi" layer of the image (rilLayers, ril.js): its cache holds
 *   them per slice for the current annotation version, with a low-resolution stack for fast
 *   scrolling; slices that hold no ROI need no request at all.
 * - Keyboard: B brush, E eraser, L lasso, F fill, P point, N navigate, [ ] brush size,
 *   Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) undo / redo, 1–9 select an ROI; S snap contour,
 *   A auto-contour, I fill between slices (semi-automatic contouring, /ril/api/contour: the
 *   parameters are read from the panel's inputs when the action starts).
 * Messages from the server are shown as plain text; requests that fail (overlays, annotations,
 * the lease) are reported in the viewer's status line and retried. Component ids come from the
 * page (rilPage.el); window and document listeners exist only while a viewer is open. The
 * series lease (edit alone, or read-only with the banner) is ril_lease.js.
 */
(function () {
    "use strict";
    var DRAW_TOOLS = {brush: "drawopenpath", eraser: "drawopenpath", lasso: "drawclosedpath",
                      lasso_erase: "drawclosedpath"};
    var KEY_TOOLS = {b: "brush", e: "eraser", l: "lasso", f: "fill", p: "point", n: "navigate"};
    var KEY_ACTIONS = {s: "contour_snap", a: "contour_auto", i: "contour_interpolate"};
    /* the contouring parameter inputs by parameter name (empty = the preset's value) */
    function contourInputs() {
        return {band: page.el("contourBand"), edge_sigma: page.el("contourSigma"),
                edge_alpha: page.el("contourAlpha"), iterations: page.el("contourIterations"),
                smoothing: page.el("contourSmoothing")};
    }
    var page = window.rilPage;
    var ROI = window.rilLayers.register({name: "roi", order: 10,
                                         palette: "the ROI colours of project.yaml (applied by the server)"});

    var A = {
        overlaysLoading: {key: null, slices: new Set()},
        settings: {tool: "navigate", roi: null, brush: 5, unit: "vox", threshold: null, depth: 0,
                   style: "fill", opacity: 0.4, hidden: [], scope: "slice"},
        rois: {}, series: null, plane: null, frame: 0, version: 0, viewing: null,
        summary: null, okey: null, failures: {},
        queue: [], busy: false, idle: [], hooked: null, edits: 0, lastEditMs: null,
        readOnly: false
    };

    function viewer() { return window.rilViewer || null; }
    function set(name, props) {
        if (window.dash_clientside && window.dash_clientside.set_props && page.id(name)) {
            window.dash_clientside.set_props(page.id(name), props);
        }
    }
    function message(text, kind) {
        var el = page.el("message");
        if (!el) { return; }
        el.textContent = text || "";
        el.className = "ril-annot-message" + (text ? " ril-annot-" + (kind || "info") : "");
    }

    /* A request for `what` failed: say so in the status line under `key`, and call retry()
       after a growing wait (only while the same view is shown: `still()` says so). */
    function failed(key, what, failure, retry, still) {
        var wait = page.backoff(A.failures[key] = (A.failures[key] || 0) + 1);
        page.reason(failure).then(function (why) {
            if (still()) { page.problem(key, "Could not load " + what + ": " + why + " — retrying"); }
        });
        page.later(function () { if (still()) { retry(); } }, wait);
    }
    function worked(key) {
        A.failures[key] = 0;
        page.solved(key);
    }
    /* the series lease (ril_lease.js, loaded after this script), told what read-only means here */
    var leaseConnected = false;
    function lease() {
        var l = window.rilLease;
        if (!leaseConnected) {
            leaseConnected = true;
            l.connect({readOnly: function (readOnly) {
                A.readOnly = readOnly;
                if (readOnly) { A.queue = []; }
                applyTool();
            }, message: message});
        }
        return l;
    }

    /* ---- overlays ------------------------------------------------------------------- */
    function styleQuery() {
        var s = A.settings;
        return "&style=" + s.style + "&opacity=" + s.opacity + "&hidden=" + s.hidden.join(",") +
            "&frame=" + A.frame + (A.viewing !== null ? "&version=" + A.viewing : "");
    }
    function overlayKey() { return [A.series, A.plane, A.viewing === null ? A.version : "v" + A.viewing, styleQuery()].join("|"); }
    function hasAnnotation(i) {
        if (!A.summary) { return false; }
        var ranges = A.summary.ranges;
        for (var k in ranges) {
            for (var j = 0; j < ranges[k].length; j++) { if (i >= ranges[k][j][0] && i < ranges[k][j][1]) { return true; } }
        }
        return false;
    }
    function resetOverlays() {
        var key = overlayKey();
        if (key === A.okey) { return; }
        A.okey = key;
        ROI.cache.clear();
        // the low-resolution stack is for scrolling: wait until edits pause before rebuilding it
        clearTimeout(A.thumbTimer);
        A.thumbTimer = setTimeout(fetchOverlayThumbs, A.edits ? 800 : 0);
    }
    function onScreen(i) { var v = viewer(); return !!(v && v.view() && v.view().index === i); }
    /* One request per overlay at a time: the viewer asks for the neighbours at every key
       while slices are cached, and a held key must not send the same request again and again. */
    function fetchOverlay(i) {
        var key = A.okey, loading = A.overlaysLoading;
        if (!hasAnnotation(i)) { ROI.cache.put(i, ""); return; }
        if (loading.key !== key) { loading = A.overlaysLoading = {key: key, slices: new Set()}; }
        if (loading.slices.has(i)) { return; }
        loading.slices.add(i);
        fetch("/ril/api/overlay?series=" + encodeURIComponent(A.series) + "&plane=" + A.plane +
              "&index=" + i + styleQuery(), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (key !== A.okey) { return; }
                ROI.cache.put(i, body.overlay);
                worked("overlay");
                if (onScreen(i)) { viewer().refresh(); }
            }, function (failure) {  // reported for the slice on screen; others on the next move
                var still = function () { return key === A.okey && onScreen(i) && !ROI.cache.has(i); };
                if (still()) {
                    failed("overlay", "the ROI overlay of slice " + (i + 1), failure,
                           function () { fetchOverlay(i); }, still);
                }
            })
            .finally(function () { loading.slices.delete(i); });
    }
    function fetchOverlayThumbs() {
        var v = viewer(), view = v && v.view();
        if (!view || !A.summary) { return; }
        var key = A.okey, g = view.geo;
        var factor = Math.max(1, Math.ceil(g.rows / 128), Math.ceil(g.cols / 128));
        fetch("/ril/api/overlay_thumbs?series=" + encodeURIComponent(A.series) + "&plane=" + A.plane +
              "&factor=" + factor + styleQuery(), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (key !== A.okey) { return; }
                ROI.cache.setStack(body.images, factor);
                worked("overlays");
                viewer().refresh();
            }, function (failure) {
                failed("overlays", "the ROI overlays for fast scrolling", failure, fetchOverlayThumbs,
                       function () { return key === A.okey; });
            });
    }
    function loadSummary(then) {
        var q = "/ril/api/annotations?series=" + encodeURIComponent(A.series) + "&plane=" + A.plane +
            "&frame=" + A.frame + (A.viewing !== null ? "&version=" + A.viewing : "");
        var view = [A.series, A.plane, A.frame, A.viewing].join("|");
        fetch(q, {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (view !== [A.series, A.plane, A.frame, A.viewing].join("|")) { return; }  // a stale answer
                worked("annotations");
                applySummary(body);
                if (then) { then(); }
            }, function (failure) {
                failed("annotations", "the annotations of this series", failure, function () { loadSummary(then); },
                       function () { return view === [A.series, A.plane, A.frame, A.viewing].join("|"); });
            });
    }
    function applySummary(body) {
        A.summary = body;
        A.version = body.version;
        var given = body.overlay;  // an edit's answer carries the new overlay of its slice
        set("version", {data: {series: A.series, version: body.version, can_undo: body.can_undo,
                                     can_redo: body.can_redo, viewing: A.viewing}});
        drawIndicator();
        drawPoints();
        loadHistory();
        resetOverlays();
        var v = viewer();
        if (given && A.viewing === null) { ROI.cache.put(given.index, given.src); }
        if (v && v.view()) {
            var i = v.view().index;
            if (!(given && given.index === i)) { ROI.cache.drop(i); fetchOverlay(i); }
            v.refresh();
        }
    }

    /* ---- slice indicator: which slices hold which ROI (click to jump) ---------------- */
    function drawIndicator() {
        var el = page.el("indicator");
        var v = viewer(), view = v && v.view();
        if (!el || !view || !A.summary) { return; }
        var n = view.geo.n, ranges = A.summary.ranges;
        el.textContent = "";
        Object.keys(ranges).forEach(function (value) {
            var roi = A.rois[value];
            if (!roi) { return; }
            var row = document.createElement("div");
            row.className = "ril-indicator-row";
            row.title = roi.name;
            ranges[value].forEach(function (r) {
                var seg = document.createElement("span");
                seg.className = "ril-indicator-seg";
                seg.style.left = (100 * r[0] / n) + "%";
                seg.style.width = Math.max(100 * (r[1] - r[0]) / n, 0.4) + "%";
                seg.style.background = roi.color;
                seg.title = roi.name + ": slices " + (r[0] + 1) + "–" + r[1];
                seg.addEventListener("click", function () { viewer().goTo(r[0]); });
                row.appendChild(seg);
            });
            el.appendChild(row);
        });
    }

    /* ---- point list: select (jump to its slice) or delete -------------------------- */
    function drawPoints() {
        var el = page.el("points");
        if (!el) { return; }
        el.textContent = "";
        var pts = (A.summary && A.summary.points) || [];
        if (!pts.length) {
            el.appendChild(Object.assign(document.createElement("div"), {className: "ril-muted", textContent: "No points."}));
            return;
        }
        pts.forEach(function (p) {
            var roi = A.rois[p.roi] || {name: String(p.roi), color: "#fff"};
            var row = document.createElement("div");
            row.className = "ril-point-row";
            var sw = document.createElement("span");
            sw.className = "ril-swatch";
            sw.style.background = roi.color;
            var label = document.createElement("button");
            label.className = "ril-link-button";
            label.textContent = roi.name + " · slice " + (p.index + 1);
            label.title = "voxel (" + p.xyz.join(", ") + ")";
            label.addEventListener("click", function () { viewer().goTo(p.index); });
            var del = document.createElement("button");
            del.className = "ril-link-button";
            del.textContent = "delete";
            del.addEventListener("click", function () {
                send({tool: "point_delete", roi: p.roi, point: p.xyz});
            });
            row.appendChild(sw); row.appendChild(label); row.appendChild(del);
            el.appendChild(row);
        });
    }

    /* ---- history: drawn only while its section is open ------------------------------ */
    function historyBox() {
        var el = page.el("history"), d = el && el.closest("details");
        return d && d.open ? el : null;
    }
    function button(text, onClick) {
        var b = document.createElement("button");
        b.className = "ril-link-button";
        b.textContent = text;
        b.addEventListener("click", onClick);
        return b;
    }
    function historyRow(id, what, who, current, damaged) {
        var row = document.createElement("div");
        row.className = "ril-history-row" + (current ? " ril-current" : "") + (damaged ? " ril-damaged" : "");
        row.title = "v" + id + "  " + what + "  " + who;  // the whole line when it is cut short
        [["ril-history-id", "v" + id], ["ril-history-op", what], ["ril-muted-inline", who]].forEach(function (c) {
            row.appendChild(Object.assign(document.createElement("span"), {className: c[0], textContent: c[1]}));
        });
        if (damaged) { return row; }  // an unreadable version file: nothing to view
        row.appendChild(button("View", function () { window.rilAnnotate.view(id); }));
        if (id > 0 && !A.readOnly) {
            row.appendChild(button("Roll back", function () {
                if (window.confirm("Roll back to version " + id + "? This adds a new version; nothing is deleted.")) {
                    window.rilAnnotate.rollback(id);
                }
            }));
        }
        return row;
    }
    function loadHistory() {
        var box = historyBox();
        if (!box || !A.series) { return; }
        fetch("/ril/api/versions?series=" + encodeURIComponent(A.series) + "&limit=50", {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                box.textContent = "";
                if (A.viewing !== null) {
                    var banner = document.createElement("div");
                    banner.className = "ril-alert ril-alert-warning";
                    banner.textContent = "Viewing version " + A.viewing + " (read-only). ";
                    banner.appendChild(button("Back to the current version", function () { window.rilAnnotate.view(null); }));
                    box.appendChild(banner);
                }
                body.versions.forEach(function (v) {
                    var kind = v.kind === "semi-auto" && v.tool ? "semi-auto:" + v.tool : v.kind;  // e.g. semi-auto:snap
                    var what = v.label ? v.label : v.op + (v.target ? " → v" + v.target : "") + (kind && kind !== "manual" ? " · " + kind : "") +
                        (v.frame !== null && v.frame !== undefined ? " · frame " + v.frame : "");
                    var who = (v.time ? v.time.slice(11, 19) + " · " : "") + v.user;
                    box.appendChild(historyRow(v.id, what, who, v.id === A.version, v.op === "damaged"));
                });
                box.appendChild(historyRow(0, "empty", "", false));
            }, function (failure) {  // shown in the section itself; opening it again retries
                page.reason(failure).then(function (why) {
                    box.textContent = "Could not load the history: " + why + ". Close and open this section to try again.";
                });
            });
    }
    function onToggle(ev) {
        var box = page.el("history");
        if (box && ev.target && ev.target.contains && ev.target.contains(box)) { loadHistory(); }
    }

    /* ---- brush cursor: a circle of the brush's size on screen ------------------------ */
    function moveCursor(ev) {
        var port = page.el("viewport"), cur = page.el("brushCursor");
        var v = viewer(), gd = v && v.graph();
        if (!port || !cur || !gd || !gd._fullLayout) { return; }
        var tool = A.settings.tool;
        if (tool !== "brush" && tool !== "eraser") { cur.style.display = "none"; return; }
        var d = Math.max(2, brushDiameterVox() * pxPerVoxel(gd)), box = port.getBoundingClientRect();
        cur.style.display = "block";
        cur.style.width = cur.style.height = d + "px";
        cur.style.left = (ev.clientX - box.left - d / 2) + "px";
        cur.style.top = (ev.clientY - box.top - d / 2) + "px";
        cur.style.borderColor = tool === "eraser" ? "#ffffff" : ((A.rois[A.settings.roi] || {}).color || "#ffffff");
    }
    function onMouseMove(ev) {
        var port = page.el("viewport");
        if (port && port.contains(ev.target)) { moveCursor(ev); }
        else { var cur = page.el("brushCursor"); if (cur) { cur.style.display = "none"; } }
    }

    /* ---- drawing -------------------------------------------------------------------- */
    function pxPerVoxel(gd) {
        var xa = gd._fullLayout.xaxis;
        return Math.abs(xa._length / (xa.range[1] - xa.range[0]));
    }
    function brushDiameterVox() {
        var s = A.settings, v = viewer(), view = v && v.view();
        if (s.unit === "mm" && view) { return s.brush / view.geo.col_mm; }
        return s.brush;
    }
    function applyTool() {
        var v = viewer(), gd = v && v.graph();
        if (!gd || !gd._fullLayout) { return; }
        var s = A.settings, roi = A.rois[s.roi] || {color: "#ffffff"};
        var erase = s.tool === "eraser" || s.tool === "lasso_erase";
        var mode = DRAW_TOOLS[s.tool] || (s.tool === "navigate" ? "zoom" : "pan");
        if ((A.viewing !== null || A.readOnly) && DRAW_TOOLS[s.tool]) { mode = false; }  // read-only: no drawing
        var width = s.tool === "brush" || s.tool === "eraser" ? Math.max(1, brushDiameterVox() * pxPerVoxel(gd)) : 2;
        var shape = {line: {color: erase ? "#ffffff" : roi.color, width: width}, opacity: 0.5,
                     fillcolor: erase ? "rgba(255,255,255,0.2)" : roi.color, layer: "above"};
        var key = mode + JSON.stringify(shape);
        if (gd._rilToolKey !== key && !(mode === "zoom" && gd.layout.dragmode === "zoom" && !gd._rilToolKey)) {
            gd._rilToolKey = key;  // a relayout redraws the figure: only when something changed
            Plotly.relayout(gd, {dragmode: mode, newshape: shape});
        }
        var port = page.el("viewport");
        if (port) { port.dataset.tool = s.tool; }
    }
    function hook(gd) {
        if (A.hooked === gd) { return; }
        A.hooked = gd;
        gd.on("plotly_relayout", function (ev) {
            if (!ev) { return; }
            if (ev.shapes && ev.shapes.length) {
                var shape = ev.shapes[ev.shapes.length - 1];
                if (shape.path) { onPath(shape.path); }  // send first, then tidy up
                Plotly.relayout(gd, {shapes: []});
            } else if (ev["xaxis.range[0]"] !== undefined || ev["xaxis.autorange"]) {
                applyTool();  // zoom changed: the brush line width follows
            }
        });
        // a click (the mouse released where it was pressed) with the fill or point tool; the
        // pixel comes from the axes (the image trace takes no plotly hover, hence no plotly_click)
        page.listen(gd, "mousedown", function (ev) { A.pressedAt = [ev.clientX, ev.clientY]; }, true);
        applyTool();
    }
    /* The mouse released (anywhere: plotly covers the page while the button is down). */
    function onRelease(ev) {
        var from = A.pressedAt, tool = A.settings.tool;
        A.pressedAt = null;
        if (ev.button !== 0 || !from || Math.abs(ev.clientX - from[0]) + Math.abs(ev.clientY - from[1]) > 4) { return; }
        if (tool !== "fill" && tool !== "point") { return; }
        var at = viewer().pixelAt(ev);
        if (at) { send({tool: tool, row: at[0], col: at[1]}); }
    }
    function onPath(path) {
        var tool = A.settings.tool;
        if (!DRAW_TOOLS[tool]) { return; }
        send({tool: tool, path: path});
    }

    /* ---- talking to the server ------------------------------------------------------ */
    function send(edit, url) {
        if (A.readOnly) { message("This series is read-only for you (see the note above the image).", "warn"); return; }
        if (A.viewing !== null) { message("You are viewing an old version (read-only). Go back to the current version to edit.", "warn"); return; }
        var s = A.settings, view = viewer().view();
        if (s.roi === null || !A.rois[s.roi]) { message("Choose an ROI first.", "warn"); return; }
        var body = Object.assign({series: A.series, roi: +s.roi, plane: view.plane, index: view.index,
                                  frame: view.frame, brush: +s.brush, brush_unit: s.unit,
                                  depth: +s.depth || 0, scope: s.scope, threshold: s.threshold,
                                  style: s.style, opacity: s.opacity, hidden: s.hidden}, edit);
        A.queue.push([url || "/ril/api/edit", body]);
        pump();
    }
    function post(url, body) {
        A.queue.push([url, body]);
        pump();
    }
    function pump() {
        if (A.busy || !A.queue.length) { return; }
        var item = A.queue.shift(), t0 = performance.now();
        item[1].parent = A.version;
        A.busy = true;
        fetch(item[0], {method: "POST", credentials: "same-origin",
                        headers: {"Content-Type": "application/json"}, body: JSON.stringify(item[1])})
            .then(function (r) {  // an answer that is not JSON (a proxy's error page) keeps its status
                return r.json().then(function (b) { return [r.status, b]; },
                                     function () { return [r.status, {error: "The server answered " + r.status + "."}]; });
            })
            .then(function (res) {  // failures of the handling itself are not the server's
                var status = res[0], body = res[1];
                if (status === 409) {
                    message(body.error + " Reloaded the latest version.", "warn");
                    A.queue = [];
                    loadSummary();
                    return;
                }
                if (status === 401) { window.location.assign("/login"); return; }
                if (status === 423 || status === 403) {
                    lease().setReadOnly({editable: false, reason: body.error, can_break: false});
                    message(body.error, "error");
                    return;
                }
                if (status !== 200) { message(body.error || "The edit failed.", "error"); return; }
                message(body.message || (body.changed ? "" : "Nothing changed."), "info");
                A.edits += 1;
                applySummary(body);
                A.lastEditMs = performance.now() - t0;
            }, function (failure) {
                page.reason(failure).then(function (why) {
                    message("The edit may not be saved (" + why + "). Reload the page.", "error");
                });
            })
            .finally(function () { A.busy = false; pump(); whenIdle(); });
    }
    /* Run fn once no edit is queued or on its way (now if none is). */
    function whenIdle(fn) {
        if (fn) { A.idle.push(fn); }
        if (A.busy || A.queue.length) { return; }
        var waiting = A.idle;
        A.idle = [];
        waiting.forEach(function (f) { f(); });
    }

    /* ---- keyboard shortcuts --------------------------------------------------------- */
    function onKey(ev) {
        if (!A.series || !page.el("graph") || page.typing(ev.target)) { return; }
        var key = ev.key.toLowerCase(), ctrl = ev.ctrlKey || ev.metaKey;
        if (ctrl && key === "z") { ev.preventDefault(); act(ev.shiftKey ? "redo" : "undo"); return; }
        if (ctrl && key === "y") { ev.preventDefault(); act("redo"); return; }
        if (ctrl || ev.altKey) { return; }
        if (KEY_TOOLS[key]) { set("tool", {value: KEY_TOOLS[key]}); return; }
        if (KEY_ACTIONS[key]) { ev.preventDefault(); act(KEY_ACTIONS[key]); return; }
        if (key === "[" || key === "]") {
            // quick presses build on the size asked for last, not on the echo of the slider
            var now = performance.now(), pending = A.brushAsked && now - A.brushAsked.at < 1500;
            var b = Math.max(1, Math.min(50, (pending ? A.brushAsked.value : A.settings.brush) + (key === "]" ? 1 : -1)));
            A.brushAsked = {value: b, at: now};
            A.settings.brush = b;
            set("brush", {value: b});
            return;
        }
        if (/^[1-9]$/.test(key)) {
            var values = Object.keys(A.rois).sort(function (a, b) { return A.rois[a].order - A.rois[b].order; });
            var pick = values[+key - 1];
            if (pick !== undefined) { set("roi", {value: +pick}); }
        }
    }

    /* ---- the viewer's lifetime on the page ------------------------------------------ */
    page.onOpen(function () {
        page.listen(window, "pagehide", function () { lease().release(true); });
        page.listen(document, "click", function (ev) { lease().onButton(ev, A.series); });
        page.listen(document, "toggle", onToggle, true);
        page.listen(document, "mousemove", onMouseMove, {passive: true});
        page.listen(document, "keydown", onKey);
        page.listen(window, "mouseup", onRelease, true);
        page.onLeave(function () {
            // give the series up once the strokes still on their way are saved
            var series = lease().stop();
            whenIdle(function () { if (series && lease().held() !== series) { lease().giveUp(series, false); } });
            A.hooked = null;
            A.failures = {};
        });
    });

    /* ---- semi-automatic contouring ---------------------------------------------------- */
    function inputValue(el) {
        if (!el) { return null; }
        if (el.tagName !== "INPUT") {  // radio items: the checked one
            var on = el.querySelector("input:checked");
            return on ? on.value : null;
        }
        return el.value === "" ? null : +el.value;
    }
    function roiExtent(roi) {
        var runs = (A.summary && A.summary.ranges && A.summary.ranges[roi]) || [];
        return runs.length ? [runs[0][0], runs[runs.length - 1][1] - 1] : null;
    }
    function contour(tool) {
        var s = A.settings, params = {}, inputs = contourInputs();
        Object.keys(inputs).forEach(function (name) {
            var v = inputValue(inputs[name]);
            if (v !== null) { params[name] = v; }
        });
        var method = inputValue(page.el("contourMethod"));
        if (method) { params.method = method; }
        var edit = {tool: tool, preset: inputValue(page.el("contourPreset")) || "ct", params: params};
        if (tool === "auto") { edit.limit = inputValue(page.el("contourLimit")) || 40; }
        if (tool === "interpolate") {  // a range given: only the gaps inside it
            var from = inputValue(page.el("contourFirst")), to = inputValue(page.el("contourLast"));
            if (from !== null && to !== null) { edit.first = from; edit.last = to; }
        }
        if (tool === "batch") {
            var extent = roiExtent(s.roi), first = inputValue(page.el("contourFirst")),
                last = inputValue(page.el("contourLast"));
            if (!extent && (first === null || last === null)) { message("Outline the ROI roughly on some slices first.", "warn"); return; }
            edit.first = first === null ? extent[0] : first;
            edit.last = last === null ? extent[1] : last;
        }
        message(tool === "batch" ? "Batch contouring… (progress on the Jobs page)" : "Contouring…", "info");
        send(edit, "/ril/api/contour");
    }

    function act(action) {
        if (!A.series) { return; }
        if (A.readOnly) { message("This series is read-only for you (see the note above the image).", "warn"); return; }
        if (action.indexOf("contour_") === 0) { contour(action.slice(8)); return; }
        var s = A.settings, view = viewer().view();
        if (action === "undo" || action === "redo") {
            post("/ril/api/" + action, {series: A.series, plane: A.plane, index: view.index, frame: A.frame,
                                        style: s.style, opacity: s.opacity, hidden: s.hidden});
            return;
        }
        if (action === "copy_frames") {  // the chosen ROI of this frame → frames first..last
            var first = page.el("copyFirst"), last = page.el("copyLast");
            if (A.viewing !== null) { message("You are viewing an old version (read-only). Go back to the current version to edit.", "warn"); return; }
            if (s.roi === null || !A.rois[s.roi]) { message("Choose an ROI first.", "warn"); return; }
            if (!first || !last || first.value === "" || last.value === "") { message("Give the frames to copy to.", "warn"); return; }
            post("/ril/api/copy_frames", {series: A.series, plane: A.plane, roi: +s.roi, frame: A.frame,
                                          first: +first.value, last: +last.value});
            return;
        }
        if (action === "clear") {
            var roi = A.rois[s.roi];
            if (!roi || !window.confirm("Remove every voxel of " + roi.name + " from this series? (Undo brings it back.)")) { return; }
        }
        send({tool: action});
    }

    window.rilAnnotate = {
        /* called by ril_viewer.js */
        viewChanged: function (meta, plane, frame) {
            A.series = meta.series; A.plane = plane; A.frame = frame;
            lease().start(meta);
            A.okey = null;
            A.summary = null;
            loadSummary();
        },
        prefetch: function (i, n) {
            if (!A.summary) { return; }
            for (var d = 0; d <= n; d++) {
                [i + d, i - d].forEach(function (k) { if (k >= 0 && !ROI.cache.has(k)) { fetchOverlay(k); } });
            }
        },
        pointsFor: function (i) {
            var out = {x: [], y: [], color: [], text: []};
            if (!A.summary) { return out; }
            A.summary.points.forEach(function (p) {
                var roi = A.rois[p.roi];
                if (p.index !== i || !roi || A.settings.hidden.indexOf(p.roi) >= 0) { return; }
                out.x.push(p.col); out.y.push(p.row); out.color.push(roi.color);
                out.text.push(roi.name + " (" + p.xyz.join(", ") + ")");
            });
            return out;
        },
        /* called from Dash clientside callbacks */
        configure: function (settings, rois) {
            A.rois = rois || {};
            var before = styleQuery();
            A.settings = Object.assign({}, A.settings, settings);
            if (A.series && styleQuery() !== before) { A.okey = null; resetOverlays(); if (viewer()) { viewer().refresh(); } }
            var gd = viewer() && viewer().graph();
            // only a graph that shows the viewer's figure (the viewer calls graphReady otherwise)
            if (gd && gd._fullLayout && gd.layout && gd.layout.meta) { hook(gd); applyTool(); }
        },
        act: act,
        /* the Dash side saved something (a text field): catch up with its version */
        sync: function (info) {
            if (info && info.series === A.series && info.version > A.version && !A.busy) {
                A.version = info.version;
                loadSummary();
            }
        },
        view: function (version) {
            A.viewing = version;
            A.okey = null;
            message(version === null ? "" : "Viewing version " + version + " (read-only).", "info");
            loadSummary();
            applyTool();
        },
        rollback: function (version) {
            var s = A.settings, view = viewer().view();
            A.viewing = null;
            post("/ril/api/rollback", {series: A.series, plane: A.plane, version: version, index: view.index, frame: A.frame,
                                       style: s.style, opacity: s.opacity, hidden: s.hidden});
        },
        deletePoint: function (roi, xyz) { send({tool: "point_delete", roi: roi, point: xyz}); },
        graphReady: function (gd) { hook(gd); applyTool(); },
        state: function () {
            return {version: A.version, viewing: A.viewing, edits: A.edits, busy: A.busy, queued: A.queue.length,
                    tool: A.settings.tool, roi: A.settings.roi, brush: A.settings.brush, lastEditMs: A.lastEditMs,
                    readOnly: A.readOnly, lease: window.rilLease ? lease().held() : null,
                    overlays: ROI.cache.full.size, summary: A.summary};
        }
    };

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        ril_annotate: {
            settings: function (tool, roi, brush, unit, limit, lo, hi, depth, style, opacity, hidden, scope, rois) {
                var threshold = (limit && limit.length && lo !== null && hi !== null && lo !== undefined && hi !== undefined) ? [+lo, +hi] : null;
                window.rilAnnotate.configure({tool: tool, roi: roi, brush: +brush || 1, unit: unit,
                                              threshold: threshold, depth: +depth || 0, style: style,
                                              opacity: +opacity, hidden: (hidden || []).map(Number), scope: scope}, rois);
                return "";
            },
            action: function () {
                var trig = window.dash_clientside.callback_context.triggered[0];
                if (!trig || !trig.value) { return window.dash_clientside.no_update; }
                var id = trig.prop_id.split(".")[0];  // {"action": …, "type": …}: the buttons' ids
                if (id.indexOf("{") !== 0) { return window.dash_clientside.no_update; }
                window.rilAnnotate.act(JSON.parse(id).action);
                return window.dash_clientside.no_update;
            }
        }
    });
}());
