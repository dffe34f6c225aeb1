// Progressive enhancement for the template editor; every action also works without it.
(function () {
  "use strict";
  var editor = document.querySelector("form.editor");
  if (!editor) return;
  // Bring the first message into view: in the YAML view the line it names,
  // else the first marked input, else the summary after "Validate".
  var source = document.getElementById("source");
  var sourceErr = document.getElementById("source-err");
  var line = sourceErr && /Line (\d+)/.exec(sourceErr.textContent);
  var firstInvalid = editor.querySelector("[aria-invalid=true]");
  var summary = document.getElementById("check-summary");
  if (source && line) {
    var lines = source.value.split("\n"), at = 0, n = parseInt(line[1], 10);
    for (var i = 0; i < n - 1 && i < lines.length; i++) at += lines[i].length + 1;
    source.focus();
    source.setSelectionRange(at, at + (lines[n - 1] || "").length);
    source.scrollTop = Math.max(0, (n - 5) * (parseFloat(getComputedStyle(source).lineHeight) || 20));
  } else if (firstInvalid && !location.hash) {
    firstInvalid.focus();
  } else if (summary && !location.hash) {
    summary.focus();
  }
  // Changing a field's type shows that type's rules: save at once instead of waiting for "Save".
  editor.addEventListener("change", function (e) {
    var t = e.target;
    if (t.tagName === "SELECT" && /\.fields\[\d+\]\.type$|^tasks\[\d+\]\.type$/.test(t.name)) {
      var b = editor.querySelector("button[name=action][value=save]");
      if (b) { dirty = false; b.click(); }
    }
  });
  // Ask before throwing work away.
  var dirty = false;
  editor.addEventListener("input", function () { dirty = true; });
  editor.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (b && /^remove_/.test(b.value) && !window.confirm(b.getAttribute("aria-label") + "?")) {
      e.preventDefault();
      return;
    }
    dirty = false;
  });
  window.addEventListener("beforeunload", function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });
  var discard = document.querySelector("form.discard");
  if (discard) discard.addEventListener("submit", function (e) {
    if (!window.confirm("Discard this draft? Its changes are lost.")) e.preventDefault();
  });
})();
