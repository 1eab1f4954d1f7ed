/*
 * ril_dash slice viewer, browser half. Uses ril.js (loaded first): rilPage for component ids,
 * window listeners and the status line, rilLayers for the layers of the image.
 *
 * The server sends the series geometry once (VIEWER_META). This script then:
 *  - keeps the slices of the "image" layer in its cache: full-resolution slices (data URLs from
 *    /ril/api/slice) and one stack of low-resolution thumbnails per plane/frame/window
 *    (/ril/api/thumbs);
 *  - builds the figure from the registered layers (one image trace each, bottom to top, then
 *    the point markers) and shows a slice by giving the layers that changed their new source
 *    (swap: straight into their <image>; a Plotly.restyle when the placement changes),
 *    instantly from their caches, so scrolling never waits on the server; the full-resolution
 *    slice is fetched when scrolling pauses, then its neighbours are prefetched;
 *  - handles keyboard, mouse wheel and right-drag window/level, and the cursor read-out;
 *  - says in the status line when a slice or the thumbnails cannot be loaded, and retries.
 * The Dash slider is moved only from here (set_props), so it never jumps back while scrolling.
 * Listeners on window and document exist only while a viewer is open (rilPage.listen).
 */
(function () {
    "use strict";
    var SECTIONS_MS = 1500, DRAW_WAIT_MS = 250, PAUSE_MS = 90, PREFETCH = 6, MAX_FULL = 160, MAX_INFLIGHT = 3, SLIDER_MS = 120;
    var BLACK = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg==";
    var BLANK = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==";
    var XLINK = "http://www.w3.org/1999/xlink";
    var page = window.rilPage, layers = window.rilLayers;
    var IMAGE = layers.register({name: "image", order: 0, limit: MAX_FULL,
                                 palette: "grey (the window/level is applied by the server)"});

    var st = {
        gen: 0, cfgKey: null, meta: null, plane: null, frame: 0, wc: 0, ww: 1, index: 0,
        requested: new Set(), queue: [], loading: new Set(), failures: 0, thumbFailures: 0,
        layers: [], onScreen: {}, looks: {}, pointsTag: null,
        shown: null, shownSrc: null, shownIndex: null, painted: null, seen: null, timer: null, renders: 0,
        drawing: 0, redraw: null,
        shownHooks: [], probeBusy: false, probeNext: null, hooked: null, hover: null, drag: null
    };

    function geo() { return st.meta.planes[st.plane]; }
    function graphDiv() {
        var el = page.el("graph");
        return el ? el.querySelector(".js-plotly-plot") : null;
    }
    /* The graph has drawn the current figure. */
    function current(gd) {
        return gd && gd._fullLayout && gd.layout && gd.layout.meta && gd.layout.meta.gen === st.gen;
    }
    /* The graph shows the current figure and dcc.Graph has no update of its own in flight
       (restyling while its Plotly.react is pending makes it drop later figures). */
    function ready(gd) {
        return current(gd) && !gd.classList.contains("dash-graph--pending") &&
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
            if (current(gd) && st.seen !== st.shown) { seen(gd); }
            if (!ready(gd)) { requestAnimationFrame(poll); return; }
            hook(gd);
            if (st.readyGen !== st.gen) {
                st.readyGen = st.gen;
                if (annotation()) { annotation().graphReady(gd); }
            }
            fn(gd);
        }());
    }

    /* Record what the graph has painted (for the position text, tests and benchmarks). */
    function painted(gd) {
        var trace = gd.data && gd.data[st.layers.indexOf(IMAGE)];
        if (trace && trace.source === st.shownSrc) {
            st.painted = st.seen = st.shown;
            st.renders += 1;
            onScreen();
        }
    }
    /* The slice whose image is on screen while a new graph is still settling (dcc.Graph's first
       resize waits 100 ms before the graph takes edits): the current figure is drawn and the
       image layer's <image> has the slice's source (a data URL: the browser loads it at once
       and paints it in the next frame). */
    function seen(gd) {
        var el = imageElement(gd, st.layers.indexOf(IMAGE));
        if (st.shownSrc && el && hrefOf(el) === st.shownSrc) {
            st.seen = st.shown;
            onScreen();
        }
    }
    /* The graph shows the slice: the page's preview goes, its closed sections can come. */
    function onScreen() {
        hidePreview();
        askSections();
    }
    /* The page's closed sections (Models, explanations, …) are asked for once its first slice
       is on screen, or after SECTIONS_MS if it never comes (a failed slice). */
    function askSections() {
        var port = page.el("viewport");
        if (!port || port._rilSections) { return; }
        port._rilSections = true;
        window.dash_clientside.set_props(page.id("sectionsWanted"), {data: true});
    }
    function hrefOf(el) { return el.getAttribute("href") || el.getAttribute("xlink:href"); }
    /* The <image> element plotly drew for image trace `trace`, if any. */
    function imageElement(gd, trace) {
        var el = null;
        gd.querySelectorAll(".imagelayer image").forEach(function (e) {
            var d = e.parentNode && e.parentNode.__data__;
            if (d && d[0] && d[0].trace && d[0].trace.index === trace) { el = e; }
        });
        return el;
    }

    /* The annotation layer (assets/ril_annotate.js) fills the "roi" layer and gives the points. */
    function annotation() { return window.rilAnnotate || null; }
    function pointsOf(i) {
        return annotation() ? annotation().pointsFor(i) : {x: [], y: [], color: [], text: []};
    }
    function pointsTag(pts) { return pts.x.join(",") + "|" + pts.y.join(",") + "|" + pts.color.join(","); }
    /* What a layer shows on slice i: its cached source, or one transparent pixel over it all. */
    function sourceOf(layer, i) {
        var s = layer.cache.get(i);
        return s && s.src ? s : {src: BLANK, f: Math.max(geo().rows, geo().cols)};
    }
    function placed(s) { return {source: s.src, x0: (s.f - 1) / 2, y0: (s.f - 1) / 2, dx: s.f, dy: s.f}; }
    function collect(into, values) {
        Object.keys(values).forEach(function (k) { (into[k] = into[k] || []).push(values[k]); });
    }

    /* Show slice i (once the graph is ready). One new image at a time: while the browser is
       still loading the image drawn last, a newer slice waits for it (or DRAW_WAIT_MS) and then
       the slice current at that moment is drawn: under a fast held key intermediate slices are
       dropped instead of every frame starting an image that never gets painted. */
    function render(i, force) {
        whenReady(function (gd) {
            if (st.index !== i) { return; }
            if (st.drawing && performance.now() - st.drawing < DRAW_WAIT_MS) {
                st.redraw = {force: !!force || !!(st.redraw && st.redraw.force)};
                clearTimeout(st.drawTimer);
                st.drawTimer = setTimeout(drawn, st.drawing + DRAW_WAIT_MS - performance.now());
                return;
            }
            draw(gd, i, force);
        });
    }
    /* The image drawn last has loaded (or waited long enough): draw what is current now. */
    function drawn() {
        st.drawing = 0;
        clearTimeout(st.drawTimer);
        var again = st.redraw;
        st.redraw = null;
        if (again) { render(st.index, again.force); }
    }
    function imageLoaded(ev) {
        var t = ev.target;
        if (!st.drawing || !t || t.tagName !== "image") { return; }
        if (hrefOf(t) === st.shownSrc) { drawn(); }
    }
    /* Draw slice i: its full slice, or its thumbnail until the full slice comes (a full slice
       costs no more to show than a thumbnail: its <image> takes the new source directly). */
    function draw(gd, i, force) {
        var image = IMAGE.cache.get(i);
        if (!image || !image.src) { return; }
        var before = st.shownSrc;
        var placements = {}, looks = {}, changed = [], restyled = [];
        st.layers.forEach(function (layer, trace) {
            var s = layer === IMAGE ? image : sourceOf(layer, i);
            var tag = layer === IMAGE ? i + (s.f === 1 ? "f" : "t") : s.src.length + ":" + s.src.slice(-24) + "@" + s.f;
            var look = layer.opacity + "|" + layer.visible;
            if (force || st.onScreen[layer.name] !== tag) {
                st.onScreen[layer.name] = tag;
                changed.push(trace);
                placements[trace] = placed(s);
                if (layer === IMAGE) { st.shown = tag; st.shownSrc = s.src; st.shownIndex = i; }
            }
            if (st.looks[layer.name] !== look) {
                st.looks[layer.name] = look;
                restyled.push(trace);
                collect(looks, {opacity: layer.opacity, visible: layer.visible});
            }
        });
        // each layer's <image> takes its new source directly (a restyle costs 6-12 ms, this
        // 0.1 ms); plotly restyles the others (a new placement, a redraw asked for)
        var rest = force ? changed : changed.filter(function (trace) {
            return !swap(gd, trace, placements[trace]);
        });
        if (rest.length) {
            var sources = {};
            rest.forEach(function (trace) { collect(sources, placements[trace]); });
            Plotly.restyle(gd, sources, rest);
        }
        if (st.shownSrc !== before) { st.drawing = performance.now(); }
        lowResolution(image.f !== 1);
        showPosition();
        st.shownHooks.forEach(function (fn) { fn(gd); });
        if (restyled.length) { Plotly.restyle(gd, looks, restyled); }
        var pts = pointsOf(i), ptag = pointsTag(pts);
        if (st.pointsTag !== ptag) {  // a restyle of the markers only when the points change
            st.pointsTag = ptag;
            Plotly.restyle(gd, {x: [pts.x], y: [pts.y], "marker.color": [pts.color], text: [pts.text]},
                           [st.layers.length]);
        }
    }

    /* Give image trace `trace` its new source without a restyle (a restyle costs 6-12 ms: plotly
       decodes the base64 for the size and the image again on a canvas; this costs 0.1 ms), when
       the new image covers the same area of the plane as the one on screen: the same pixel
       size, or whole tiles of the plane (a thumbnail over a full slice). The figure's data take
       the new source and placement (what a later recalculation uses); plotly's computed trace
       keeps its placement with the new source (what a zoom or pan redraws: the same area). */
    function swap(gd, trace, placement) {
        var data = gd.data[trace], full = gd._fullData && gd._fullData[trace], g = geo();
        var tiles = function (f) { return f === 1 || (g.rows % f === 0 && g.cols % f === 0); };
        if (!data || !full || data.type !== "image" || !full._hasSource ||
            !(placement.dx === full.dx || (tiles(placement.dx) && tiles(full.dx)))) { return false; }
        var el = imageElement(gd, trace);
        if (!el) { return false; }
        Object.keys(placement).forEach(function (k) { data[k] = placement[k]; });
        full.source = placement.source;
        el.setAttributeNS(XLINK, "href", placement.source);
        painted(gd);
        return true;
    }

    /* A discreet mark over the image while it shows a thumbnail (the full slice is on its way). */
    function lowResolution(on) {
        var port = page.el("viewport");
        if (port && port.classList.contains("ril-lowres") !== on) { port.classList.toggle("ril-lowres", on); }
    }

    /* "Axial  20 / 40": the slice whose image is on screen (while keys run ahead of the
       drawing, the number never does). */
    function positionText() {
        if (!st.meta) { return ""; }
        var label = st.plane.charAt(0).toUpperCase() + st.plane.slice(1);
        var i = st.shownIndex === null ? st.index : st.shownIndex;
        return label + "  " + (i + 1) + " / " + geo().n;
    }
    function showPosition() {
        var pos = page.el("position"), text = positionText();
        if (pos && pos.textContent !== text) { pos.textContent = text; }
    }

    /* ---- fetching ------------------------------------------------------------------- */
    /* requested = in flight (loading) + queued; a queued slice dropped by a later fetchAround
       is no longer requested, so it is asked for again when it is wanted again */
    function pump() {
        while (st.loading.size < MAX_INFLIGHT && st.queue.length) {
            fetchFull(st.queue.shift());
        }
    }
    function fetchFull(i, then) {
        var gen = st.gen, loading = st.loading;
        loading.add(i);
        fetch("/ril/api/slice?" + query("index=" + i), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.text() : Promise.reject(r); })
            .then(function (src) {
                if (gen !== st.gen) { return; }
                IMAGE.cache.put(i, src);
                st.failures = 0;
                page.solved("slice");
                if (st.index === i) { render(i); }
            }, function (failure) {
                if (gen !== st.gen) { return; }
                if (st.index === i) { sliceFailed(i, failure); }
            })
            .finally(function () {
                loading.delete(i);
                if (loading === st.loading) { st.requested.delete(i); }
                if (gen !== st.gen) { return; }
                if (then) { then(); }
                pump();
            });
    }
    /* The slice on screen could not be loaded: say so (the thumbnail, if any, stays) and retry. */
    function sliceFailed(i, failure) {
        var gen = st.gen, wait = page.backoff(st.failures += 1);
        page.reason(failure).then(function (why) {
            if (gen === st.gen && !IMAGE.cache.has(i)) {
                page.problem("slice", "Could not load slice " + (i + 1) + ": " + why + " — retrying");
            }
        });
        page.later(function () { if (gen === st.gen) { fetchAround(); } }, wait);
    }
    function want(i) {
        if (i < 0 || i >= geo().n || IMAGE.cache.has(i) || st.requested.has(i)) { return; }
        st.requested.add(i);
        st.queue.push(i);
    }
    function fetchAround() {
        var i = st.index;
        if (annotation()) { annotation().prefetch(i, PREFETCH); }
        st.queue = [];
        st.requested = new Set(st.loading);  // what was queued and not sent is dropped
        want(i);
        for (var d = 1; d <= PREFETCH; d++) { want(i + d); want(i - d); }
        pump();
    }
    function fetchThumbs() {
        var gen = st.gen;
        fetch("/ril/api/thumbs?" + query(), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (gen !== st.gen) { return; }
                IMAGE.cache.setStack(body.images, body.factor);
                st.thumbFailures = 0;
                page.solved("thumbs");
                render(st.index);
            }, function (failure) {
                if (gen !== st.gen) { return; }
                page.reason(failure).then(function (why) {
                    if (gen === st.gen) {
                        page.problem("thumbs", "Could not load the thumbnails for fast scrolling: " + why + " — retrying");
                    }
                });
                page.later(function () { if (gen === st.gen) { fetchThumbs(); } }, page.backoff(st.thumbFailures += 1));
            });
    }

    /* ---- navigation ----------------------------------------------------------------- */
    function show(i) {
        if (!st.meta) { return; }
        i = Math.max(0, Math.min(geo().n - 1, i | 0));
        st.index = i;
        render(i);
        clearTimeout(st.timer);
        st.timer = setTimeout(fetchAround, IMAGE.cache.has(i) ? 0 : PAUSE_MS);
        if (st.hover) { probe(st.hover[0], st.hover[1]); }  // the value under a still cursor
    }
    /* Move the Dash slider to where the image is; its callback will echo the value back,
       possibly after the image has moved on: that echo is recognised and ignored. */
    function moveSlider(i) {
        st.sliderAt = performance.now();
        st.sliderEcho = i;
        window.dash_clientside.set_props(page.id("slider"), {value: i});
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
        if (!st.meta || !page.el("graph")) { return; }
        var t = ev.target, frame = page.el("frame");
        if (page.typing(t)) { return; }
        if (frame && frame.contains(t)) { return; }  // its own arrow keys
        if (t && t.closest && t.closest(".rc-slider, .dash-slider, [role=slider]")) { ev.preventDefault(); }
        var n = geo().n, moves = {
            ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1,
            PageUp: 10, PageDown: -10, Home: -n, End: n
        };
        if (!(ev.key in moves) || ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
        ev.preventDefault();
        step(moves[ev.key]);
    }

    function hook(gd) {
        if (st.hooked === gd) { return; }
        st.hooked = gd;
        var port = page.el("viewport");
        if (port && !port._rilHooked) {  // listeners of the element go with it
            port._rilHooked = true;
            port.addEventListener("wheel", function (ev) {
                if (!st.meta) { return; }
                ev.preventDefault();
                step(ev.deltaY < 0 ? 1 : -1);
            }, {passive: false});
            port.addEventListener("contextmenu", function (ev) { ev.preventDefault(); });
            port.addEventListener("mousedown", startDrag, true);
            port.addEventListener("mouseleave", function () { st.hover = null; readout("–"); });
        }
        // the voxel under the pointer comes from the axes, not from plotly's hover on the
        // image trace (which has no hover: its label colour is a typed array plotly rejects)
        page.listen(gd, "mousemove", pointerAt);
        page.listen(gd, "load", imageLoaded, true);  // an <image> of the figure has loaded
        gd.on("plotly_afterplot", function () {
            painted(gd);
            placeLetters(gd);
            st.shownHooks.forEach(function (fn) { fn(gd); });  // a zoom moves what is drawn over it
        });
        painted(gd);
    }

    /* ---- window / level by right-drag ----------------------------------------------- */
    function startDrag(ev) {
        if (ev.button !== 2 || !st.meta) { return; }
        ev.preventDefault();
        ev.stopPropagation();
        st.drag = {x: ev.clientX, y: ev.clientY, wc: st.wc, ww: st.ww};
    }
    function moveDrag(ev) {
        var drag = st.drag;
        if (!drag) { return; }
        var scale = Math.max(drag.ww, 1) / 300;
        var ww = Math.max(1e-3, drag.ww + (ev.clientX - drag.x) * scale);
        var wc = drag.wc - (ev.clientY - drag.y) * scale;
        readout("W " + ww.toFixed(0) + "  L " + wc.toFixed(0));
        drag.result = [wc, ww];
    }
    function endDrag() {
        var r = st.drag && st.drag.result;
        st.drag = null;
        if (r) {
            window.dash_clientside.set_props(page.id("windowCenter"), {value: +r[0].toFixed(2)});
            window.dash_clientside.set_props(page.id("windowWidth"), {value: +r[1].toFixed(2)});
        }
    }

    /* ---- cursor read-out ------------------------------------------------------------ */
    /* The slice pixel [row, col] under a mouse event, from the axes (zoom included); null
       outside the image. */
    function pixelAt(ev) {
        var gd = graphDiv(), fl = gd && gd._fullLayout;
        if (!st.meta || !fl || !fl.xaxis || !fl.yaxis) { return null; }
        var box = gd.getBoundingClientRect(), g = geo();
        var row = Math.round(fl.yaxis.p2l(ev.clientY - box.top - fl.yaxis._offset));
        var col = Math.round(fl.xaxis.p2l(ev.clientX - box.left - fl.xaxis._offset));
        return (row < 0 || col < 0 || row >= g.rows || col >= g.cols) ? null : [row, col];
    }
    function pointerAt(ev) {
        var at = pixelAt(ev);
        if (!at) {
            if (st.hover) { st.hover = null; readout("–"); }
            return;
        }
        if (st.hover && st.hover[0] === at[0] && st.hover[1] === at[1]) { return; }
        st.hover = at;
        probe(at[0], at[1]);
    }
    function readout(text) {
        var el = page.el("readout");
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
                page.solved("probe");
                readout("voxel (" + p.voxel.join(", ") + ")  value " + fmt(p.value) +
                        "\nworld (" + p.world.map(function (v) { return v.toFixed(1); }).join(", ") + ") mm");
            }, function (failure) {
                readout("–");
                page.reason(failure).then(function (why) {
                    page.problem("probe", "Could not read the value under the cursor: " + why);
                });
            })
            .finally(function () {
                st.probeBusy = false;
                var next = st.probeNext;
                st.probeNext = null;
                if (next) { probe(next[0], next[1]); }
            });
    }

    /* ---- figure --------------------------------------------------------------------- */
    /* The figure for the current view, one trace per registered layer, then the points;
       with the slice's image when it is cached already. */
    function figure(index) {
        var g = geo(), i = index === undefined ? st.index : index;
        var src = index === undefined ? null : IMAGE.cache.full.get(index);
        st.shown = src ? index + "f" : null;
        st.shownIndex = src ? index : null;
        st.shownSrc = src;
        st.layers = layers.list();
        st.onScreen = {image: st.shown};
        st.looks = {};
        var data = st.layers.map(function (layer) {
            st.looks[layer.name] = layer.opacity + "|" + layer.visible;
            var trace = {type: "image", hoverinfo: "skip",
                         opacity: layer.opacity, visible: layer.visible};
            if (layer !== IMAGE) { return Object.assign(trace, placed(sourceOf(layer, i))); }
            return Object.assign(trace, src ? placed({src: src, f: 1})
                : {source: BLACK, x0: (g.cols - 1) / 2, y0: (g.rows - 1) / 2, dx: g.cols, dy: g.rows});
        });
        // explicit ranges with autorange off: a later relayout (tool change) must not re-run
        // autorange, which flips the x axis of image traces
        var axis = {visible: false, showgrid: false, zeroline: false, fixedrange: false, autorange: false};
        var pts = pointsOf(st.index);
        st.pointsTag = pointsTag(pts);
        data.push({type: "scatter", mode: "markers", hoverinfo: "text", x: pts.x, y: pts.y, text: pts.text,
                   marker: {symbol: "circle-open-dot", size: 13, line: {width: 2}, color: pts.color}});
        return {
            data: data,
            layout: {
                meta: {gen: st.gen},
                margin: {l: 0, r: 0, t: 0, b: 0}, paper_bgcolor: "#000", plot_bgcolor: "#000",
                dragmode: "zoom", hovermode: "closest",
                // a narrow column at the right edge, not a bar across the image's top corner
                modebar: {orientation: "v", bgcolor: "rgba(0, 0, 0, 0.35)"},
                uirevision: st.meta.series + "|" + st.plane,
                xaxis: Object.assign({range: [-0.5, g.cols - 0.5], constrain: "domain"}, axis),
                yaxis: Object.assign({range: [g.rows - 0.5, -0.5], scaleanchor: "x",
                                      scaleratio: g.row_mm / g.col_mm, constrain: "domain"}, axis)
            }
        };
    }
    function orientationLetters() {
        var labels = geo().labels;
        var letters = {left: page.el("orientLeft"), right: page.el("orientRight"),
                       top: page.el("orientTop"), bottom: page.el("orientBottom")};
        Object.keys(letters).forEach(function (side) {
            if (letters[side]) { letters[side].textContent = labels[side] || ""; }
        });
    }

    /* Put the orientation letters just outside the edges of the image (zoomed or not), kept
       inside the viewport: a wide coronal slice has its S and I next to it, not at the far
       edges of the black area. */
    function placeLetters(gd) {
        var fl = gd._fullLayout, port = page.el("viewport");
        if (!st.meta || !fl || !fl.xaxis || !port) { return; }
        var g = geo(), pb = port.getBoundingClientRect(), gb = gd.getBoundingClientRect();
        var xs = [fl.xaxis.l2p(-0.5), fl.xaxis.l2p(g.cols - 0.5)].map(function (v) { return v + fl.xaxis._offset; });
        var ys = [fl.yaxis.l2p(-0.5), fl.yaxis.l2p(g.rows - 0.5)].map(function (v) { return v + fl.yaxis._offset; });
        var dx = gb.left - pb.left, dy = gb.top - pb.top, gap = 14;
        var left = Math.max(Math.min(xs[0], xs[1]), fl.xaxis._offset) + dx;
        var right = Math.min(Math.max(xs[0], xs[1]), fl.xaxis._offset + fl.xaxis._length) + dx;
        var top = Math.max(Math.min(ys[0], ys[1]), fl.yaxis._offset) + dy;
        var bottom = Math.min(Math.max(ys[0], ys[1]), fl.yaxis._offset + fl.yaxis._length) + dy;
        var clampX = function (v) { return Math.max(10, Math.min(pb.width - 10, v)); };
        var clampY = function (v) { return Math.max(12, Math.min(pb.height - 12, v)); };
        [[page.el("orientLeft"), clampX(left - gap), (top + bottom) / 2],
         [page.el("orientRight"), clampX(right + gap), (top + bottom) / 2],
         [page.el("orientTop"), (left + right) / 2, clampY(top - gap)],
         [page.el("orientBottom"), (left + right) / 2, clampY(bottom + gap)]].forEach(function (p) {
            if (!p[0]) { return; }
            p[0].style.left = p[1].toFixed(0) + "px";
            p[0].style.top = p[2].toFixed(0) + "px";
        });
    }

    /* The same view in a new graph (the page was left and opened again): keep the caches. */
    function reopen(meta) {
        st.gen += 1;
        st.meta = meta;  // the new page's: its editing status is the one that counts now
        st.painted = null; st.seen = null; st.drawing = 0; st.redraw = null;
        orientationLetters();
        if (annotation()) { annotation().viewChanged(meta, st.plane, st.frame, st.index); }
        var fig = figure(st.index);
        if (!st.shown) { render(st.index); } else { whenReady(function () {}); }
        if (!IMAGE.cache.stack) { fetchThumbs(); }
        st.timer = setTimeout(fetchAround, 0);
        page.later(askSections, SECTIONS_MS);
        return [fig, geo().n - 1, st.index];
    }

    /* What the figure is configured for: the view (series, plane), its frame and window. */
    function configKey(series, plane, frame, wc, ww) { return [series, plane, frame, wc, ww].join("|"); }
    /* The view (series, plane) is the one configured last, in whichever frame or window: the
       viewer keeps its slice when it comes back. */
    function keepsSlice(series, plane) { return !!st.cfgKey && st.cfgKey.indexOf(series + "|" + plane + "|") === 0; }

    function configure(meta, plane, frame, wc, ww) {
        var nu = window.dash_clientside.no_update;
        page.session();  // the viewer now on the page (one that was left is closed first)
        if (!meta || !meta.planes) { return [nu, nu, nu]; }
        plane = meta.planes[plane] ? plane : meta.default_plane;
        wc = (typeof wc === "number" && isFinite(wc)) ? wc : meta.window[0];
        ww = (typeof ww === "number" && isFinite(ww) && ww > 0) ? ww : meta.window[1];
        frame = frame | 0;
        var key = configKey(meta.series, plane, frame, wc, ww);
        if (key === st.cfgKey) { return ready(graphDiv()) ? [nu, nu, nu] : reopen(meta); }
        var sameView = st.meta && keepsSlice(meta.series, plane) && st.meta.series === meta.series;
        st.gen += 1;
        st.meta = meta; st.plane = plane; st.frame = frame; st.wc = wc; st.ww = ww;
        st.cfgKey = key;
        IMAGE.cache.clear(); st.requested = new Set(); st.queue = []; st.loading = new Set();
        st.shown = null; st.shownSrc = null; st.shownIndex = null; st.painted = null; st.seen = null; st.failures = 0; st.thumbFailures = 0;
        st.drawing = 0; st.redraw = null;
        page.solved("slice"); page.solved("thumbs");
        var n = geo().n, first = meta.first_slice;
        st.index = sameView ? Math.min(st.index, n - 1) : Math.floor((n - 1) / 2);
        if (first && first.plane === plane && first.index === st.index && frame === 0 &&
                first.window[0] === wc && first.window[1] === ww) {
            IMAGE.cache.put(first.index, first.src);  // sent with the page: no request needed
        }
        orientationLetters();
        if (annotation()) { annotation().viewChanged(meta, plane, frame, st.index); }
        // the first slice goes first: the thumbnail stack and the neighbours are CPU work on
        // the server that would otherwise delay it
        st.requested.add(st.index);
        clearTimeout(st.timer);
        var after = function () {
            fetchThumbs();
            st.timer = setTimeout(fetchAround, PAUSE_MS);
        };
        if (IMAGE.cache.has(st.index)) { after(); } else { fetchFull(st.index, after); }
        var fig = figure(st.index);
        whenReady(function () {});  // hook the new graph as soon as it shows the figure
        page.later(askSections, SECTIONS_MS);
        return [fig, n - 1, st.index];
    }

    /* ---- the first slice before the graph ------------------------------------------- */
    /* A new viewer page is in the document about 100 ms before its graph has drawn the
       figure. Its preview (an <img> of the page's first slice, placed by CSS where the figure
       puts the image) is shown at once when it is what the viewer will show: the page's first
       slice for a view not open before, or the slice the viewer keeps for the view it had
       (from its cache); it goes as soon as the graph shows the slice. */
    function showPreview(el) {
        var v = JSON.parse(el.getAttribute("data-ril-view"));  // {series, plane, index, window}
        var src = null, shows = null;
        if (!keepsSlice(v.series, v.plane)) {
            src = el.getAttribute("src");  // a view not open before starts at the page's slice
            shows = v.index + "f";
        } else if (st.cfgKey === configKey(v.series, v.plane, 0, v.window[0], v.window[1])) {
            src = IMAGE.cache.full.get(st.index) || null;  // the view comes back as it was
            shows = st.index + "f";
        }
        if (!src) { return; }
        if (el.getAttribute("src") !== src) { el.setAttribute("src", src); }
        el.setAttribute("data-ril-shows", shows);
        el.hidden = false;
    }
    function hidePreview() {
        var el = page.el("preview");
        if (el && !el.hidden) { el.hidden = true; }
    }
    new MutationObserver(function () {
        var el = document.querySelector(".ril-preview:not([data-ril-checked])");
        if (!el) { return; }
        el.setAttribute("data-ril-checked", "");
        showPreview(el);
    }).observe(document.documentElement, {childList: true, subtree: true});

    /* ---- the viewer's lifetime on the page ------------------------------------------ */
    page.onOpen(function () {
        page.listen(document, "keydown", onKey, true);
        page.listen(window, "mousemove", moveDrag);
        page.listen(window, "mouseup", endDrag);
        page.onLeave(function () {
            st.gen += 1;  // answers still on their way and pending draws belong to the page left
            st.requested = new Set(); st.queue = []; st.loading = new Set();
            clearTimeout(st.timer); clearTimeout(st.sliderTimer);
            st.hooked = null; st.hover = null; st.drag = null; st.failures = 0; st.thumbFailures = 0;
        });
    });

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

    window.rilViewer = {
        /* for the annotation layer */
        graph: graphDiv,
        view: function () {
            return st.meta ? {series: st.meta.series, plane: st.plane, frame: st.frame, index: st.index,
                              geo: geo(), spacing: st.meta.spacing, factor: IMAGE.cache.factor,
                              gen: st.gen} : null;
        },
        refresh: function () { if (st.meta) { render(st.index, true); } },
        goTo: function (i) { step(i - st.index); },
        pixelAt: pixelAt,
        /* the series' description (planes, shape, the plane mapping) and the window */
        meta: function () { return st.meta; },
        windowOf: function () { return [st.wc, st.ww]; },
        /* fn(graph div) after each slice drawn and each redraw of the figure */
        onShown: function (fn) { st.shownHooks.push(fn); },
        /* the trace index of a layer in the figure on screen ("points": the point markers) */
        trace: function (name) {
            return name === "points" ? st.layers.length
                : st.layers.indexOf(st.layers.filter(function (l) { return l.name === name; })[0]);
        },
        /* for tests and benchmarks: what is on screen and how many renders happened */
        state: function () {
            return {index: st.index, plane: st.plane, frame: st.frame, wc: st.wc, ww: st.ww,
                    shown: st.shown, seen: st.seen, painted: st.painted, renders: st.renders, cached: IMAGE.cache.full.size,
                    thumbs: IMAGE.cache.stack ? IMAGE.cache.stack.length : 0, gen: st.gen};
        },
        step: step
    };
}());
