/* paperscope: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  var body = document.body;

  // Time zone: remember the browser's zone in a cookie so the server shows slots in it. When this
  // page was rendered in the default zone (UTC) and shows times, reload once to show them locally.
  try {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && /^[A-Za-z0-9_+\-\/]+$/.test(tz) && !/(?:^|;\s*)tz=/.test(document.cookie)) {
      document.cookie = "tz=" + tz + "; path=/; max-age=31536000; samesite=lax";
      if (body.getAttribute("data-tz-source") === "default" && tz !== "UTC" && document.querySelector("time")) {
        location.reload();
      }
    }
  } catch (e) { /* no Intl: UTC it is */ }

  // "/" focuses the search box (as on GitHub), unless the reader is typing somewhere.
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var box = document.querySelector("input[data-hotkey='/']");
    if (!box) return;
    ev.preventDefault();
    box.focus();
    box.select();
  });

  // Selects that change the page (the time zone) submit themselves; their button is for no-JS.
  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  Array.prototype.forEach.call(document.querySelectorAll(".js-hide"), function (el) { el.hidden = true; });

  // On a phone the facets start folded (except the ones in use), so results come first.
  if (window.matchMedia && window.matchMedia("(max-width: 760px)").matches) {
    Array.prototype.forEach.call(document.querySelectorAll("details.facet[open]"), function (d) {
      if (!d.querySelector(".selected")) d.open = false;
    });
  }

  // Copy buttons (BibTeX).
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      }, function () {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Press Ctrl+C";
      });
    });
  });
})();
