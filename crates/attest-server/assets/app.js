// Progressive enhancement only: every page works without this script.
// On a run page, a task form asks the server which tasks and fields its
// values (not yet saved) show, and shows or hides them at once.
"use strict";
(function () {
  function setFieldVisible(wrap, visible) {
    wrap.hidden = !visible;
    wrap.querySelectorAll("input, select, textarea").forEach(function (el) {
      // Hidden fields are not sent, like the server-rendered form.
      el.disabled = !visible;
    });
  }

  function applyVisibility(data) {
    Object.keys(data.fields || {}).forEach(function (key) {
      document.querySelectorAll('[data-field="' + key + '"]').forEach(function (wrap) {
        setFieldVisible(wrap, data.fields[key]);
      });
    });
    Object.keys(data.tasks || {}).forEach(function (key) {
      var card = document.querySelector('[data-task="' + key + '"]');
      if (!card) return;
      var wasHidden = card.classList.contains("st-hidden");
      var nowHidden = !data.tasks[key];
      if (wasHidden === nowHidden) return;
      // The card's content comes from the server on the next load; mark the change now.
      card.classList.toggle("st-hidden", nowHidden);
      card.classList.toggle("st-open", !nowHidden);
      var badge = card.querySelector("[data-task-state]");
      if (badge) {
        badge.textContent = nowHidden ? "not needed in this run" : "needed: save to continue";
        badge.className = "badge " + (nowHidden ? "hidden" : "open");
      }
    });
  }

  function preview(form) {
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("data-preview"), {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin",
    })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) applyVisibility(data); })
      .catch(function () { /* the server re-renders on save anyway */ });
  }

  document.querySelectorAll("form[data-preview]").forEach(function (form) {
    form.addEventListener("change", function () { preview(form); });
  });

  // Bring the first message into view for keyboard and screen-reader users.
  var firstError = document.querySelector(".form-error[tabindex]");
  if (firstError && !document.querySelector("[autofocus]")) firstError.focus();
})();
