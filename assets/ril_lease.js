/*
 * ril_dash series lease, browser half (used by ril_annotate.js; the server half is
 * /ril/api/lease): a page that opens a series edits it alone, renewing its lease while the
 * viewer shows it, and gives it up when it leaves (a beacon when the page is closed); a page
 * that cannot have it shows the series read-only, with the banner saying why and, where the
 * user may, Try again, Break the lock or Repair (a damaged annotation file, admins).
 *
 * window.rilLease: connect({readOnly(flag), message(text, kind)}), start(meta),
 * setReadOnly(info), release(beacon), stop(), giveUp(series, beacon), onButton(ev, series),
 * held().
 */
(function () {
    "use strict";
    var page = window.rilPage;
    var L = {series: null, timer: null,
             hooks: {readOnly: function () {}, message: function () {}}};

    function banner(info) {
        var box = page.el("leaseBanner");
        if (!box) { return; }
        box.hidden = !!info.editable;
        var reason = box.querySelector(".ril-lease-reason");
        if (reason) { reason.textContent = info.reason || info.error || ""; }
        var brk = page.el("leaseBreak");
        if (brk) { brk.hidden = !info.can_break; }
        var repair = page.el("leaseRepair");  // a damaged annotation file: admins repair it
        if (repair) { repair.hidden = !info.can_repair; }
    }
    /* The series is editable or read-only for this page now (`info`: an answer of
       /ril/api/lease, or {editable: false, reason} for a refused edit). */
    function setReadOnly(info) {
        var readOnly = !info.editable;
        var open = page.session();
        if (open) { open.root.classList.toggle("ril-read-only", readOnly); }
        var panel = document.querySelector(".ril-annot-panel");
        if (panel) { panel.classList.toggle("ril-read-only", readOnly); }
        banner(info);
        if (readOnly) { stop(); }
        L.hooks.readOnly(readOnly);
    }
    function leasePost(series, action) {
        return fetch("/ril/api/lease", {method: "POST", credentials: "same-origin",
                                        headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify({series: series, action: action})})
            .then(function (r) {
                if (r.status === 401) { window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search)); }
                if (r.status >= 500) { return Promise.reject(r); }  // a failure, not an answer
                // a refusal (403: no right to the series any more, 404: gone) is read-only too
                return r.json().then(function (info) {
                    if (r.status === 403 || r.status === 404) {
                        info = {editable: false, reason: "Read only: " + info.error, can_break: false};
                    }
                    return info;
                }, function () { return Promise.reject(r); });
            });
    }
    /* Stop renewing (the lease expires on the server); returns the series it was for. */
    function stop() {
        var series = L.series;
        if (L.timer) { clearInterval(L.timer); }
        L.timer = null;
        L.series = null;
        return series;
    }
    /* A view of `meta.series` opened: edit it (renewing the lease) or show it read-only. */
    function start(meta) {
        var editing = meta.editing || {editable: true};
        if (L.series === meta.series) { return; }
        release(false);  // another series was open before (navigation inside the app)
        setReadOnly(editing);
        if (!editing.editable) { return; }
        L.series = meta.series;
        var every = Math.max(5, (editing.lease_seconds || 120) / 3) * 1000, last = Date.now();
        L.timer = setInterval(function () {  // leaving the viewer stops it (onLeave)
            if (Date.now() - last < every) { return; }
            last = Date.now();
            leasePost(L.series, "renew").then(function (info) {
                page.solved("lease");
                if (info && info.editable === false) {
                    setReadOnly(info);
                    L.hooks.message(info.reason || "This series is read-only now.", "warn");
                }
            }, function (failure) {  // tried again at the next renewal
                page.reason(failure).then(function (why) {
                    page.problem("lease", "Could not renew your editing lease: " + why + " — retrying");
                });
            });
        }, 1000);
    }
    function release(beacon) {
        var series = stop();
        if (series) { giveUp(series, beacon); }
    }
    /* Tell the server that this page no longer edits `series`. */
    function giveUp(series, beacon) {
        var body = JSON.stringify({series: series, action: "release"});
        if (beacon && navigator.sendBeacon) {
            navigator.sendBeacon("/ril/api/lease", new Blob([body], {type: "application/json"}));
            return;
        }
        // the viewer is gone: nowhere to show a failure, and the lease expires by itself
        leasePost(series, "release").catch(function (failure) {
            page.reason(failure).then(function (why) {
                console.warn("ril_dash: the lease of " + series + " was not released (" + why +
                             "); it expires after the server's lease time.");
            });
        });
    }
    /* A click anywhere: Try again, Break the lock or Repair of the banner act on `series`. */
    function onButton(ev, series) {
        var id = ev.target && ev.target.id;
        var action = id === page.id("leaseRetry") ? "renew" : id === page.id("leaseBreak") ? "break" :
            id === page.id("leaseRepair") ? "repair" : null;
        if (!action || !series) { return; }
        if (action === "break" && !window.confirm("End the other user's editing session? Their unsaved stroke (if any) is refused and they see the series read-only.")) { return; }
        if (action === "repair" && !window.confirm("Repair this series? A new version equal to the last readable one is saved; the damaged file is kept beside the others as .damaged.")) { return; }
        leasePost(series, action).then(function (info) {
            page.solved("lease");
            if (info.editable) { window.location.reload(); } else { banner(info); }
        }, function (failure) {
            page.reason(failure).then(function (why) {
                page.problem("lease", {renew: "Could not try again: ", "break": "Could not break the lock: ",
                                       repair: "Could not repair the series: "}[action] + why);
            });
        });
    }

    window.rilLease = {
        connect: function (hooks) { L.hooks = hooks; },
        start: start, setReadOnly: setReadOnly, release: release, stop: stop, giveUp: giveUp,
        onButton: onButton,
        held: function () { return L.series; }
    };
}());
