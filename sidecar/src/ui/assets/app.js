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
});
