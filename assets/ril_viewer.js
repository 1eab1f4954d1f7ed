/*
 * ril_dash slice viewer, browser half.
 *
 * The server sends the series geometry once (VIEWER_META). This script then:
 *  - keeps a cache of full-resolution slices (data URLs from /ril/api/slice) and one stack of
 *    low-resolution thumbnails per plane/frame/window (/ril/api/thumbs);
 *  - switches the image of the plotly graph with Plotly.restyle, instantly from the cache, so
 *    scrolling never waits on the server; the full-resolution slice is fetched when scrolling
 *    pauses, then its neighbours are prefetched;
 *  - handles keyboard, mouse wheel and right-drag window/level, and the cursor read-out.
 * The Dash slider is moved only from here (set_props), so it never jumps back while scrolling.
 */
(function () {
    "use strict";
    var GRAPH_ID = "viewer-graph", SLIDER_ID = "slice-slider", VIEWPORT_ID = "ril-viewport";
    var PAUSE_MS = 90, PREFETCH = 6, MAX_FULL = 160, MAX_INFLIGHT = 3, SLIDER_MS = 120;
    var BLACK = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg==";
    var BLANK = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";

    var st = {
        gen: 0, cfgKey: null, meta: null, plane: null, frame: 0, wc: 0, ww: 1, index: 0,
        full: new Map(), requested: new Set(), queue: [], inflight: 0,
        thumbs: null, factor: 1, shown: null, shownSrc: null, painted: null, timer: null, renders: 0,
        probeBusy: false, probeNext: null, hooked: null, hover: null
    };

    function geo() { return st.meta.planes[st.plane]; }
    function graphDiv() {
        var el = document.getElementById(GRAPH_ID);
        return el ? el.querySelector(".js-plotly-plot") : null;
    }
    /* The graph shows the current figure and dcc.Graph has no update of its own in flight
       (restyling while its Plotly.react is pending makes it drop later figures). */
    function ready(gd) {
        return gd && gd._fullLayout && gd.layout && gd.layout.meta && gd.layout.meta.gen === st.gen &&
            !gd.classList.contains("dash-graph--pending") &&
            !(gd.parentElement && gd.parentElement.classList.contains("dash-graph--pending"));
    }
    function query(extra) {
        var q = "series=" + encodeURIComponent(st.meta.series) + "&plane=" + st.plane +
            "&frame=" + st.frame + "&wc=" + st.wc + "&ww=" + st.ww;
        return extra ? q + "&" + extra : q;
    }

    /* ---- drawing -------------------------------------------------------------------- */
    /* Call fn(graph div) once the graph shows the current figure (polls each frame). */
    function whenReady(fn) {
        var gen = st.gen;
        (function poll() {
            if (gen !== st.gen) { return; }
            var gd = graphDiv();
            if (!ready(gd)) { requestAnimationFrame(poll); return; }
            hook(gd);
            if (st.readyGen !== st.gen) {
                st.readyGen = st.gen;
                if (layer()) { layer().graphReady(gd); }
            }
            fn(gd);
        }());
    }

    /* Record what the graph has painted (for the position text, tests and benchmarks). */
    function painted(gd) {
        var trace = gd.data && gd.data[0];
        if (trace && trace.source === st.shownSrc) { st.painted = st.shown; st.renders += 1; }
    }

    /* The annotation layer (assets/ril_annotate.js) supplies an overlay image and points. */
    function layer() { return window.rilAnnotate || null; }
    function overlayOf(i) {
        var o = layer() ? layer().overlayFor(i) : null;
        return o && o.src ? o : {src: BLANK, f: Math.max(geo().rows, geo().cols)};
    }
    function pointsOf(i) {
        return layer() ? layer().pointsFor(i) : {x: [], y: [], color: [], text: []};
    }

    function render(i, force) {
        whenReady(function (gd) {
            if (st.index !== i) { return; }
            var src = st.full.get(i), f = 1;
            if (!src && st.thumbs) { src = st.thumbs[i]; f = st.factor; }
            if (!src) { return; }
            var tag = i + (f === 1 ? "f" : "t"), ov = overlayOf(i), pts = pointsOf(i);
            var layerTag = ov.src.length + ":" + ov.src.slice(-24);
            var pointsTag = pts.x.join(",") + "|" + pts.y.join(",") + "|" + pts.color.join(",");
            if (!force && st.shown === tag && st.layerTag === layerTag && st.pointsTag === pointsTag) { return; }
            var layerChanged = force || st.layerTag !== layerTag;
            st.shown = tag;
            st.shownSrc = src;
            st.layerTag = layerTag;
            var g = (ov.f - 1) / 2;
            if (layerChanged) {
                Plotly.restyle(gd, {
                    source: [src, ov.src], x0: [(f - 1) / 2, g], y0: [(f - 1) / 2, g], dx: [f, ov.f], dy: [f, ov.f]
                }, [0, 1]);
            } else {  // the usual case while scrolling through unannotated slices: one trace
                Plotly.restyle(gd, {source: [src], x0: [(f - 1) / 2], y0: [(f - 1) / 2], dx: [f], dy: [f]}, [0]);
            }
            if (st.pointsTag !== pointsTag) {  // a second restyle only when the points change
                st.pointsTag = pointsTag;
                Plotly.restyle(gd, {x: [pts.x], y: [pts.y], "marker.color": [pts.color], text: [pts.text]}, [2]);
            }
        });
    }

    function positionText() {
        if (!st.meta) { return ""; }
        var label = st.plane.charAt(0).toUpperCase() + st.plane.slice(1);
        return label + "  " + (st.index + 1) + " / " + geo().n;
    }

    /* ---- fetching ------------------------------------------------------------------- */
    function pump() {
        while (st.inflight < MAX_INFLIGHT && st.queue.length) {
            fetchFull(st.queue.shift());
        }
    }
    function fetchFull(i, then) {
        var gen = st.gen;
        st.inflight += 1;
        fetch("/ril/api/slice?" + query("index=" + i), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.text() : Promise.reject(r); })
            .then(function (src) {
                if (gen !== st.gen) { return; }
                st.full.set(i, src);
                if (st.full.size > MAX_FULL) { st.full.delete(st.full.keys().next().value); }
                if (st.index === i) { render(i); }
            })
            .catch(function () { if (gen === st.gen) { st.requested.delete(i); } })
            .finally(function () { st.inflight -= 1; if (then && gen === st.gen) { then(); } pump(); });
    }
    function want(i) {
        if (i < 0 || i >= geo().n || st.full.has(i) || st.requested.has(i)) { return; }
        st.requested.add(i);
        st.queue.push(i);
    }
    function fetchAround() {
        var i = st.index;
        if (layer()) { layer().prefetch(i, PREFETCH); }
        st.queue = [];
        want(i);
        for (var d = 1; d <= PREFETCH; d++) { want(i + d); want(i - d); }
        // anything queued before but dropped is no longer requested
        st.requested = new Set(Array.from(st.requested).filter(function (k) {
            return st.full.has(k) || st.queue.indexOf(k) >= 0 || Math.abs(k - i) <= PREFETCH;
        }));
        pump();
    }
    function fetchThumbs() {
        var gen = st.gen;
        fetch("/ril/api/thumbs?" + query(), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (gen !== st.gen) { return; }
                st.thumbs = body.images;
                st.factor = body.factor;
                render(st.index);
            })
            .catch(function () {});
    }

    /* ---- navigation ----------------------------------------------------------------- */
    function show(i) {
        if (!st.meta) { return; }
        i = Math.max(0, Math.min(geo().n - 1, i | 0));
        st.index = i;
        render(i);
        clearTimeout(st.timer);
        st.timer = setTimeout(fetchAround, st.full.has(i) ? 0 : PAUSE_MS);
        var pos = document.getElementById("viewer-position");
        if (pos) { pos.textContent = positionText(); }
        if (st.hover) { probe(st.hover[0], st.hover[1]); }  // the value under a still cursor
    }
    /* Move the Dash slider to where the image is; its callback will echo the value back,
       possibly after the image has moved on: that echo is recognised and ignored. */
    function moveSlider(i) {
        st.sliderAt = performance.now();
        st.sliderEcho = i;
        window.dash_clientside.set_props(SLIDER_ID, {value: i});
    }
    function step(delta) {
        if (!st.meta || !graphDiv()) { return; }
        var i = Math.max(0, Math.min(geo().n - 1, st.index + delta));
        if (i === st.index) { return; }
        show(i);
        // moving the Dash slider re-renders it: while keys or the wheel scroll fast, do it at
        // most every SLIDER_MS and once more when they stop (the image never waits for it)
        clearTimeout(st.sliderTimer);
        var now = performance.now();
        if (now - (st.sliderAt || 0) > SLIDER_MS) {
            moveSlider(i);
        } else {
            st.sliderTimer = setTimeout(function () { moveSlider(st.index); }, SLIDER_MS);
        }
    }

    function onKey(ev) {
        if (!st.meta || !document.getElementById(GRAPH_ID)) { return; }
        var t = ev.target, tag = t && t.tagName;
        if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) { return; }
        if (t && t.closest && t.closest("#frame-slider")) { return; }  // its own arrow keys
        if (t && t.closest && t.closest(".rc-slider, .dash-slider, [role=slider]")) { ev.preventDefault(); }
        var n = geo().n, moves = {
            ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1,
            PageUp: 10, PageDown: -10, Home: -n, End: n
        };
        if (!(ev.key in moves) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
        ev.preventDefault();
        step(moves[ev.key]);
    }
    document.addEventListener("keydown", onKey, true);

    function hook(gd) {
        if (st.hooked === gd) { return; }
        st.hooked = gd;
        var port = document.getElementById(VIEWPORT_ID);
        if (port && !port._rilHooked) {
            port._rilHooked = true;
            port.addEventListener("wheel", function (ev) {
                if (!st.meta) { return; }
                ev.preventDefault();
                step(ev.deltaY < 0 ? 1 : -1);
            }, {passive: false});
            hookWindowDrag(port);
        }
        gd.on("plotly_hover", function (ev) {
            var p = ev.points && ev.points[0];
            if (!p) { return; }
            st.hover = [Math.round(p.y), Math.round(p.x)];
            probe(st.hover[0], st.hover[1]);
        });
        // plotly also "unhovers" when a new slice is drawn under a still cursor: clear the
        // read-out only when the pointer really leaves the image
        gd.on("plotly_unhover", function (ev) {
            if (ev && ev.event && ev.event.type === "mouseout") { st.hover = null; readout("–"); }
        });
        if (port && !port._rilLeave) {
            port._rilLeave = true;
            port.addEventListener("mouseleave", function () { st.hover = null; readout("–"); });
        }
        gd.on("plotly_afterplot", function () { painted(gd); });
        painted(gd);
    }

    /* ---- window / level by right-drag ----------------------------------------------- */
    function hookWindowDrag(port) {
        var drag = null;
        port.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
        port.addEventListener("mousedown", function (ev) {
            if (ev.button !== 2 || !st.meta) { return; }
            ev.preventDefault();
            ev.stopPropagation();
            drag = {x: ev.clientX, y: ev.clientY, wc: st.wc, ww: st.ww};
        }, true);
        window.addEventListener("mousemove", function (ev) {
            if (!drag) { return; }
            var scale = Math.max(drag.ww, 1) / 300;
            var ww = Math.max(1e-3, drag.ww + (ev.clientX - drag.x) * scale);
            var wc = drag.wc - (ev.clientY - drag.y) * scale;
            readout("W " + ww.toFixed(0) + "  L " + wc.toFixed(0));
            drag.result = [wc, ww];
        });
        window.addEventListener("mouseup", function () {
            if (!drag) { return; }
            var r = drag.result;
            drag = null;
            if (r) {
                window.dash_clientside.set_props("window-center", {value: +r[0].toFixed(2)});
                window.dash_clientside.set_props("window-width", {value: +r[1].toFixed(2)});
            }
        });
    }

    /* ---- cursor read-out ------------------------------------------------------------ */
    function readout(text) {
        var el = document.getElementById("viewer-readout");
        if (el) { el.textContent = text; }
    }
    function fmt(v) { return typeof v === "number" ? (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(5)) : v; }
    function probe(row, col) {
        if (st.probeBusy) { st.probeNext = [row, col]; return; }
        var g = geo();
        if (row < 0 || col < 0 || row >= g.rows || col >= g.cols) { return; }
        st.probeBusy = true;
        fetch("/ril/api/probe?" + query("index=" + st.index + "&row=" + row + "&col=" + col))
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (p) {
                readout("voxel (" + p.voxel.join(", ") + ")  value " + fmt(p.value) +
                        "\nworld (" + p.world.map(function (v) { return v.toFixed(1); }).join(", ") + ") mm");
            })
            .catch(function () {})
            .finally(function () {
                st.probeBusy = false;
                var next = st.probeNext;
                st.probeNext = null;
                if (next) { probe(next[0], next[1]); }
            });
    }

    /* ---- figure --------------------------------------------------------------------- */
    /* The figure for the current view; with the slice's image when it is cached already. */
    function figure(index) {
        var g = geo(), src = index === undefined ? null : st.full.get(index);
        var image = src ? {source: src, x0: 0, y0: 0, dx: 1, dy: 1}
            : {source: BLACK, x0: (g.cols - 1) / 2, y0: (g.rows - 1) / 2, dx: g.cols, dy: g.rows};
        st.shown = src ? index + "f" : null;
        st.shownSrc = src;
        // explicit ranges with autorange off: a later relayout (tool change) must not re-run
        // autorange, which flips the x axis of image traces
        var axis = {visible: false, showgrid: false, zeroline: false, fixedrange: false, autorange: false};
        var ov = overlayOf(index === undefined ? st.index : index), pts = pointsOf(st.index);
        var o0 = (ov.f - 1) / 2;
        st.layerTag = null;
        st.pointsTag = pts.x.join(",") + "|" + pts.y.join(",") + "|" + pts.color.join(",");
        return {
            data: [Object.assign({type: "image", hoverinfo: "none"}, image),
                   {type: "image", hoverinfo: "skip", source: ov.src, x0: o0, y0: o0, dx: ov.f, dy: ov.f},
                   {type: "scatter", mode: "markers", hoverinfo: "text", x: pts.x, y: pts.y, text: pts.text,
                    marker: {symbol: "circle-open-dot", size: 13, line: {width: 2}, color: pts.color}}],
            layout: {
                meta: {gen: st.gen},
                margin: {l: 0, r: 0, t: 0, b: 0}, paper_bgcolor: "#000", plot_bgcolor: "#000",
                dragmode: "zoom", hovermode: "closest",
                uirevision: st.meta.series + "|" + st.plane,
                xaxis: Object.assign({range: [-0.5, g.cols - 0.5], constrain: "domain"}, axis),
                yaxis: Object.assign({range: [g.rows - 0.5, -0.5], scaleanchor: "x",
                                      scaleratio: g.row_mm / g.col_mm, constrain: "domain"}, axis)
            }
        };
    }
    function orientationLetters() {
        var labels = geo().labels;
        ["left", "right", "top", "bottom"].forEach(function (side) {
            var el = document.getElementById("ril-orient-" + side);
            if (el) { el.textContent = labels[side] || ""; }
        });
    }

    function configure(meta, plane, frame, wc, ww) {
        var nu = window.dash_clientside.no_update;
        if (!meta || !meta.planes) { return [nu, nu, nu]; }
        plane = meta.planes[plane] ? plane : meta.default_plane;
        wc = (typeof wc === "number" && isFinite(wc)) ? wc : meta.window[0];
        ww = (typeof ww === "number" && isFinite(ww) && ww > 0) ? ww : meta.window[1];
        frame = frame | 0;
        var viewKey = meta.series + "|" + plane;
        var key = viewKey + "|" + frame + "|" + wc + "|" + ww;
        if (key === st.cfgKey) {
            if (ready(graphDiv())) { return [nu, nu, nu]; }
            // the same view in a new graph (the page was left and opened again): keep caches
            st.gen += 1;
            st.painted = null;
            orientationLetters();
            var fig = figure(st.index);
            if (!st.shown) { render(st.index); } else { whenReady(function () {}); }
            return [fig, geo().n - 1, st.index];
        }
        var sameView = st.meta && st.cfgKey && st.cfgKey.indexOf(viewKey + "|") === 0 &&
            st.meta.series === meta.series;
        st.gen += 1;
        st.meta = meta; st.plane = plane; st.frame = frame; st.wc = wc; st.ww = ww;
        st.cfgKey = key;
        st.full = new Map(); st.requested = new Set(); st.queue = [];
        st.thumbs = null; st.shown = null; st.shownSrc = null; st.painted = null;
        var n = geo().n, first = meta.first_slice;
        st.index = sameView ? Math.min(st.index, n - 1) : Math.floor((n - 1) / 2);
        if (first && first.plane === plane && first.index === st.index && frame === 0 &&
                first.window[0] === wc && first.window[1] === ww) {
            st.full.set(first.index, first.src);  // sent with the page: no request needed
        }
        orientationLetters();
        if (layer()) { layer().viewChanged(meta, plane, frame, st.index); }
        // the first slice goes first: the thumbnail stack and the neighbours are CPU work on
        // the server that would otherwise delay it
        st.requested.add(st.index);
        clearTimeout(st.timer);
        var after = function () {
            fetchThumbs();
            st.timer = setTimeout(fetchAround, PAUSE_MS);
        };
        if (st.full.has(st.index)) { after(); } else { fetchFull(st.index, after); }
        var fig = figure(st.index);
        whenReady(function () {});  // hook the new graph as soon as it shows the figure
        return [fig, n - 1, st.index];
    }

    function preset(name, meta) {
        if (!meta) { return [window.dash_clientside.no_update, window.dash_clientside.no_update]; }
        var cw = name === "auto" ? meta.auto_window : meta.presets[name];
        return cw ? [cw[0], cw[1]] : [window.dash_clientside.no_update, window.dash_clientside.no_update];
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        ril: {
            configure: configure,
            show: function (value, dragValue) {
                var trig = window.dash_clientside.callback_context.triggered;
                var v = (trig.length && trig[0].prop_id.indexOf("drag_value") >= 0 && dragValue != null)
                    ? dragValue : value;
                if (v === st.sliderEcho) { return positionText(); }  // our own move, not the user's
                st.sliderEcho = null;
                if (v != null && v !== st.index) { show(v); }
                return positionText();
            },
            preset: preset
        }
    });

    /* For tests and benchmarks: what is on screen and how many renders happened. */
    window.rilViewer = {
        /* for the annotation layer */
        graph: graphDiv,
        view: function () {
            return st.meta ? {series: st.meta.series, plane: st.plane, frame: st.frame, index: st.index,
                              geo: geo(), spacing: st.meta.spacing, factor: st.factor, gen: st.gen} : null;
        },
        refresh: function () { if (st.meta) { render(st.index, true); } },
        goTo: function (i) { step(i - st.index); },
        state: function () {
            return {index: st.index, plane: st.plane, frame: st.frame, wc: st.wc, ww: st.ww,
                    shown: st.shown, painted: st.painted, renders: st.renders, cached: st.full.size,
                    thumbs: st.thumbs ? st.thumbs.length : 0, gen: st.gen};
        },
        step: step
    };
}());
