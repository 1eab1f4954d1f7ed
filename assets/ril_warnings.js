/*
 * ril_dash: warnings the server adds to a successful answer (header X-Ril-Warning, see
 * ril_dash/ui/audit_warnings.py), e.g. "saved; the audit log could not be written" when a change
 * was saved but its audit line could not be written. Every fetch of the page (the Dash
 * callbacks and the viewer scripts) passes through here; the warning is shown in a box at the
 * top of the page until the user closes it.
 */
(function () {
    "use strict";
    var HEADER = "X-Ril-Warning";
    var original = window.fetch;
    if (!original || original.rilWarnings) { return; }

    function show(text) {
        var box = document.getElementById("ril-warning-box");
        if (!box) {
            box = document.createElement("div");
            box.id = "ril-warning-box";
            box.className = "ril-alert ril-alert-warning ril-warning-box";
            box.setAttribute("role", "alert");
            var message = document.createElement("span");
            message.className = "ril-warning-text";
            var close = document.createElement("button");
            close.className = "ril-button";
            close.textContent = "Close";
            close.addEventListener("click", function () { box.remove(); });
            box.appendChild(message);
            box.appendChild(close);
            document.body.appendChild(box);
        }
        box.querySelector(".ril-warning-text").textContent = text;
    }

    function watched() {
        return original.apply(this, arguments).then(function (response) {
            var text = response.headers && response.headers.get(HEADER);
            if (text) { show(text); }
            return response;
        });
    }
    watched.rilWarnings = true;
    window.fetch = watched;
}());
