/*
 * ril_dash heat-map layer: what a model sees, drawn over the slice (works with ril_viewer.js).
 *
 * The "heatmap" layer of rilLayers (ril.js), above the ROI overlay. "Show for this slice" calls
 * rilHeat.computeSlice(ask) from a clientside callback: one plain request
 * (/ril/api/heatmap-slice, the map computed by the model worker unless it already was) whose
 * answer becomes the panel's map set with that slice's PNG as `first`. The viewer's "What the
 * model sees" panel (ril_dash/ui/components/explain_panel.py) calls rilHeat.show(view, look)
 * from a clientside callback whenever the map set on screen, its opacity, its threshold or the
 * plane changes: view = {series, query, token[, first]} names the map set (null: hide it;
 * first = {index, plane, src}: the slice just computed, shown before any request), look =
 * {opacity, threshold ("auto" or 0..1), plane}. Every computed map of the plane comes in one
 * request (/ril/api/heatmaps: RGBA PNGs coloured by the server, rainbow palette, transparent
 * below the threshold) and goes into the layer's cache, so scrolling shows each slice's map as
 * fast as the image; an opacity change only restyles the layer. A failed request is reported in
 * the viewer's status line.
 */
(function () {
    "use strict";
    var page = window.rilPage;
    var NAME = "heatmap";
    var HEAT = window.rilLayers.register({name: NAME, order: 30, opacity: 0.5,
                                          palette: "rainbow: violet low, red high (applied by the server)"});
    var H = {key: null, token: null, gen: 0, loadedAt: null, error: null};

    function refresh() { if (window.rilViewer) { window.rilViewer.refresh(); } }

    function clear() {
        H.key = null;
        H.gen += 1;
        HEAT.cache.clear();
        refresh();
    }

    function show(view, look) {
        if (!view || !view.query) { clear(); return; }
        var threshold = look.threshold === "auto" ? "auto" : String(Number(look.threshold));
        var query = view.query + "&plane=" + encodeURIComponent(look.plane || "axial") +
            "&threshold=" + encodeURIComponent(threshold);
        window.rilLayers.set(NAME, {opacity: Number(look.opacity), visible: true});
        var key = query + "|" + view.token;
        if (key === H.key) { return; }
        H.key = key;
        if (view.first && view.token !== H.token && view.first.plane === look.plane) {
            HEAT.cache.put(view.first.index, view.first.src);  // sent with the answer: no wait
            H.loadedAt = performance.now();
            refresh();
        }
        H.token = view.token;
        var gen = (H.gen += 1);
        fetch("/ril/api/heatmaps?" + query, {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                if (gen !== H.gen) { return; }
                HEAT.cache.clear();
                Object.keys(body.images).forEach(function (i) { HEAT.cache.put(Number(i), body.images[i]); });
                H.loadedAt = performance.now();
                H.error = null;
                page.solved("heatmap");
                refresh();
            }, function (failure) {
                if (gen !== H.gen) { return; }
                H.key = null;
                page.reason(failure).then(function (why) {
                    H.error = why;
                    page.problem("heatmap", "Could not load the heat map: " + why);
                });
            });
    }

    /* ask = {series, model, method, layer, target, plane, index, threshold}; resolves to
       {shown: the panel's map set, message} or {error: why} */
    function computeSlice(ask) {
        var params = {series: ask.series, model: ask.model, method: ask.method,
                      target: String(ask.target), plane: ask.plane, index: String(ask.index),
                      threshold: ask.threshold === "auto" ? "auto" : String(Number(ask.threshold))};
        if (ask.layer) { params.layer = ask.layer; }
        var query = new URLSearchParams(params);
        return fetch("/ril/api/heatmap-slice?" + query.toString(), {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.json() : Promise.reject(r); })
            .then(function (body) {
                return {message: body.message,
                        shown: {series: ask.series, query: body.query, token: performance.now(),
                                first: {index: body.index, plane: body.plane, src: body.src}}};
            }, function (failure) {
                return page.reason(failure).then(function (why) { return {error: why}; });
            });
    }

    page.onOpen(function () { H.key = null; H.gen += 1; HEAT.cache.clear(); });

    window.rilHeat = {
        show: show,
        computeSlice: computeSlice,
        /* for tests and benchmarks */
        state: function () {
            return {maps: HEAT.cache.full.size, indices: Array.from(HEAT.cache.full.keys()),
                    opacity: HEAT.opacity, loadedAt: H.loadedAt, error: H.error, key: H.key};
        }
    };
}());
