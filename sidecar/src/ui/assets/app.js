// Synapsor Runner review UI: small conveniences only. Every page reads and every form submits
// without this script; the server checks everything on submit.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Filters apply as soon as a phase is picked.
  document.querySelectorAll("select.autosubmit").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
  });
  // A decision button stays disabled until its confirmation is ticked, and is sent once.
  document.querySelectorAll("form.decision").forEach(function (form) {
    var box = form.querySelector('input[name="confirm"]');
    var button = form.querySelector('button[type="submit"]');
    if (!box || !button) { return; }
    var sync = function () { button.disabled = !box.checked; };
    box.addEventListener("change", sync);
    sync();
    form.addEventListener("submit", function () { window.setTimeout(function () { button.disabled = true; }, 0); });
  });
  // Times in the reader's own zone, as a tooltip (the page shows UTC).
  document.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d.getTime())) { t.title = d.toLocaleString(); }
  });
  // Live pages (sources that watch): reload when what the page shows changed, unless the
  // person is in the middle of a decision; then say so instead of losing what they typed.
  var live = document.body.getAttribute("data-live");
  if (live && window.EventSource) {
    var busy = function () {
      return Array.prototype.some.call(document.querySelectorAll("form.decision"), function (form) {
        var box = form.querySelector('input[name="confirm"]');
        var text = form.querySelector("textarea");
        return (box && box.checked) || (text && text.value.trim() !== "");
      });
    };
    var pending = null;
    var source = new EventSource(live);
    source.addEventListener("changed", function () {
      if (pending) { return; }
      pending = window.setTimeout(function () {
        pending = null;
        if (busy()) {
          document.getElementById("live-notice").hidden = false;
        } else {
          source.close();
          window.location.reload();
        }
      }, 150);
    });
  }
});
