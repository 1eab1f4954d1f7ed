/*
 * ril_dash three-plane layout, browser half (after ril.js; uses rilViewer and rilAnnotate).
 *
 * With "Three planes" pressed (remembered by the browser) the two planes that are not on the
 * main image are shown beside it, linked by a 3D cursor (a voxel):
 *  - the main image's slice is the cursor's position along its axis; a click on the main image
 *    with the Navigate tool moves the cursor within the slice;
 *  - each side view shows the slice of its plane through the cursor, with the cursor's lines;
 *    a click in a side view moves the cursor there, so the main image and the other side view
 *    follow (ITK-SNAP's and Slicer's linked crosshair);
 *  - "Main" on a side view makes its plane the main one, at the cursor: every tool paints there.
 * The side views are plain images of /ril/api/slice at the main image's window and frame. How a
 * plane maps voxels comes with the series (meta.mapping, ril_dash/core/planes.py), so nothing
 * here knows the orientation conventions.
 */
(function () {
    "use strict";
    var STORE_KEY = "ril.threePlanes", CACHE_LIMIT = 90, CLICK_PX = 4;
    var PLANE_NAMES = {axial: "Axial", coronal: "Coronal", sagittal: "Sagittal"};
    var page = window.rilPage;
    var P = {on: false, cursor: null, series: null, plane: null, wantIndex: null, cache: new Map(),
             side: {}, pressedAt: null, registered: false};

    function viewer() { return window.rilViewer || null; }
    function enabled() { return P.on && !!page.el("sideViews"); }

    /* ---- voxels and display pixels ---------------------------------------------------- */
    function toDisplay(meta, plane, xyz) {
        var m = meta.mapping[plane], a = m.axes, sh = meta.shape;
        return [xyz[a[0]], m.flip[0] ? sh[a[1]] - 1 - xyz[a[1]] : xyz[a[1]],
                m.flip[1] ? sh[a[2]] - 1 - xyz[a[2]] : xyz[a[2]]];
    }
    function toVoxel(meta, plane, index, row, col) {
        var m = meta.mapping[plane], a = m.axes, sh = meta.shape, xyz = [0, 0, 0];
        xyz[a[0]] = index;
        xyz[a[1]] = m.flip[0] ? sh[a[1]] - 1 - row : row;
        xyz[a[2]] = m.flip[1] ? sh[a[2]] - 1 - col : col;
        return xyz;
    }
    function sidePlanes(main) {
        return ["axial", "coronal", "sagittal"].filter(function (p) { return p !== main; });
    }

    /* ---- the main image: follow it, draw the cursor over it --------------------------- */
    function shown(gd) {
        var v = viewer(), view = v && v.view(), meta = v && v.meta();
        if (!view || !meta || !meta.mapping) { return; }
        if (P.series !== view.series || !P.cursor) {
            P.series = view.series;
            P.cursor = meta.shape.map(function (n) { return Math.floor(n / 2); });
        }
        if (P.wantIndex !== null && P.wantIndex[0] === view.plane) {  // made main at the cursor
            var want = P.wantIndex[1];
            P.wantIndex = null;
            if (want !== view.index) { v.goTo(want); return; }
        }
        P.plane = view.plane;
        P.cursor[meta.mapping[view.plane].axes[0]] = view.index;
        if (!enabled()) { return; }
        drawCrosshair(gd, meta, view);
        drawSides(meta, view);
    }
    function drawCrosshair(gd, meta, view) {
        var box = page.el("crosshair"), port = page.el("viewport"), fl = gd && gd._fullLayout;
        if (!box || !port || !fl || !fl.xaxis) { return; }
        var at = toDisplay(meta, view.plane, P.cursor), pb = port.getBoundingClientRect(),
            gb = gd.getBoundingClientRect();
        var x = fl.xaxis.l2p(at[2]) + fl.xaxis._offset + gb.left - pb.left;
        var y = fl.yaxis.l2p(at[1]) + fl.yaxis._offset + gb.top - pb.top;
        var h = box.children[0], w = box.children[1];
        h.style.left = (fl.xaxis._offset + gb.left - pb.left) + "px";
        h.style.width = fl.xaxis._length + "px";
        h.style.top = y.toFixed(1) + "px";
        w.style.top = (fl.yaxis._offset + gb.top - pb.top) + "px";
        w.style.height = fl.yaxis._length + "px";
        w.style.left = x.toFixed(1) + "px";
        box.hidden = false;
    }
    /* A click (released where pressed) on the main image with the Navigate tool. */
    function onPress(ev) {
        var port = page.el("viewport");
        P.pressedAt = port && port.contains(ev.target) && ev.button === 0 ? [ev.clientX, ev.clientY] : null;
    }
    function onRelease(ev) {
        var from = P.pressedAt, v = viewer();
        P.pressedAt = null;
        if (!from || !enabled() || !v || Math.abs(ev.clientX - from[0]) + Math.abs(ev.clientY - from[1]) > CLICK_PX) { return; }
        var tool = window.rilAnnotate ? window.rilAnnotate.state().tool : "navigate";
        var at = v.pixelAt(ev), view = v.view(), meta = v.meta();
        if (tool !== "navigate" || !at || !view) { return; }
        P.cursor = toVoxel(meta, view.plane, view.index, at[0], at[1]);
        drawCrosshair(v.graph(), meta, view);
        drawSides(meta, view);
    }

    /* ---- the side views --------------------------------------------------------------- */
    function sideView(slot) {
        var root = page.el("sideViews");
        if (P.side[slot] && P.side[slot].root.isConnected) { return P.side[slot]; }
        var el = document.createElement("div");
        el.className = "ril-side-view";
        el.innerHTML = '<div class="ril-side-head"><span class="ril-side-name"></span>' +
            '<button type="button" class="ril-button ril-side-main" title="Show this plane as the main image, at the cursor">Main</button></div>' +
            '<div class="ril-side-frame"><img class="ril-side-image" alt="" draggable="false">' +
            '<div class="ril-crosshair-h"></div><div class="ril-crosshair-v"></div></div>';
        root.appendChild(el);
        var side = {root: el, plane: null, img: el.querySelector("img"), name: el.querySelector(".ril-side-name"),
                    frame: el.querySelector(".ril-side-frame"), want: null};
        el.querySelector(".ril-side-main").addEventListener("click", function () { makeMain(side.plane); });
        side.frame.addEventListener("click", function (ev) { sideClick(side, ev); });
        P.side[slot] = side;
        return side;
    }
    function drawSides(meta, view) {
        var root = page.el("sideViews");
        if (!root) { return; }
        sidePlanes(view.plane).forEach(function (plane, k) {
            var side = sideView("slot" + k);  // two slots, whatever plane is main
            side.plane = plane;
            side.root.dataset.plane = plane;
            var g = meta.planes[plane], at = toDisplay(meta, plane, P.cursor);
            side.name.textContent = PLANE_NAMES[plane] + "  " + (at[0] + 1) + " / " + g.n;
            side.frame.style.aspectRatio = (g.cols * g.col_mm) + " / " + (g.rows * g.row_mm);
            side.frame.querySelector(".ril-crosshair-h").style.top = ((at[1] + 0.5) / g.rows * 100) + "%";
            side.frame.querySelector(".ril-crosshair-v").style.left = ((at[2] + 0.5) / g.cols * 100) + "%";
            side.index = at[0];
            load(side, meta, view, plane, at[0]);
        });
    }
    function load(side, meta, view, plane, index) {
        var win = viewer().windowOf();
        var q = "series=" + encodeURIComponent(view.series) + "&plane=" + plane + "&frame=" + view.frame +
            "&wc=" + win[0] + "&ww=" + win[1] + "&index=" + index;
        side.want = q;
        var cached = P.cache.get(q);
        if (cached) { show(side, q, cached); return; }
        fetch("/ril/api/slice?" + q, {credentials: "same-origin"})
            .then(function (r) { return r.ok ? r.text() : Promise.reject(r); })
            .then(function (src) {
                P.cache.set(q, src);
                if (P.cache.size > CACHE_LIMIT) { P.cache.delete(P.cache.keys().next().value); }
                page.solved("sideViews");
                show(side, q, src);
            }, function (failure) {
                page.reason(failure).then(function (why) {
                    if (side.want === q) { page.problem("sideViews", "Could not load the " + plane + " view: " + why); }
                });
            });
    }
    function show(side, q, src) {
        if (side.want !== q) { return; }  // the cursor moved on meanwhile
        if (side.img.getAttribute("src") !== src) { side.img.setAttribute("src", src); }
        side.root.dataset.shown = q;
    }
    function sideClick(side, ev) {
        var v = viewer(), view = v && v.view(), meta = v && v.meta();
        if (!view || !side.plane) { return; }
        var g = meta.planes[side.plane], box = side.frame.getBoundingClientRect();
        var row = Math.floor((ev.clientY - box.top) / box.height * g.rows);
        var col = Math.floor((ev.clientX - box.left) / box.width * g.cols);
        if (row < 0 || col < 0 || row >= g.rows || col >= g.cols) { return; }
        P.cursor = toVoxel(meta, side.plane, side.index, row, col);
        var index = P.cursor[meta.mapping[view.plane].axes[0]];
        if (index !== view.index) { v.goTo(index); } else { shown(v.graph()); }
    }
    function makeMain(plane) {
        var v = viewer(), meta = v && v.meta();
        if (!meta || !plane) { return; }
        P.wantIndex = [plane, P.cursor[meta.mapping[plane].axes[0]]];
        window.dash_clientside.set_props(page.id("plane"), {value: plane});
    }

    /* ---- the layout ------------------------------------------------------------------- */
    function apply() {
        var on = enabled(), sides = page.el("sideViews"), cross = page.el("crosshair"), button = page.el("threePlanes");
        if (button) { button.setAttribute("aria-pressed", on ? "true" : "false"); button.classList.toggle("ril-active", on); }
        var root = sides && sides.closest(".ril-viewer-main");
        if (!sides) { return; }
        sides.hidden = !on;
        if (cross) { cross.hidden = !on; }
        if (root) { root.classList.toggle("ril-three", on); }
        window.dispatchEvent(new Event("resize"));  // the main graph takes its new width
        var v = viewer();
        if (on && v && v.graph()) { shown(v.graph()); }
    }
    page.onOpen(function () {
        if (!P.registered && viewer()) { P.registered = true; viewer().onShown(shown); }
        P.side = {};
        P.on = window.localStorage.getItem(STORE_KEY) === "1";
        var button = page.el("threePlanes");
        if (button) {
            page.listen(button, "click", function () {
                P.on = !P.on;
                window.localStorage.setItem(STORE_KEY, P.on ? "1" : "0");
                apply();
            });
        }
        page.listen(document, "mousedown", onPress, true);
        page.listen(window, "mouseup", onRelease, true);
        apply();
    });

    window.rilPlanes = {
        /* for tests: the cursor (canonical voxel) and what each side view shows */
        state: function () {
            var sides = {};
            Object.keys(P.side).forEach(function (k) {
                var s = P.side[k];
                if (s.plane) { sides[s.plane] = {index: s.index, shown: s.root.dataset.shown === s.want}; }
            });
            return {on: enabled(), cursor: P.cursor ? P.cursor.slice() : null, sides: sides};
        }
    };
}());
