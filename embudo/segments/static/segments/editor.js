// The condition editor's live count: as the conditions change, ask the API (debounced) whether
// they are valid, how they read, and how many contacts match now.
(function () {
  "use strict";
  const box = document.querySelector("[data-live-preview]");
  const area = document.getElementById("conditions");
  if (!box || !area) return;
  const count = box.querySelector("[data-testid=live-count]");
  const text = box.querySelector("[data-testid=live-text]");
  const error = box.querySelector("[data-testid=live-error]");
  const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let latest = 0;

  function conditions() {
    const raw = area.value.trim();
    if (!raw) return {};
    try {
      return JSON.parse(raw);
    } catch (e) {
      return raw; // the server names what is malformed
    }
  }

  async function refresh() {
    const asked = ++latest;
    box.classList.add("loading");
    let body;
    try {
      const response = await fetch(box.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token },
        body: JSON.stringify({ conditions: conditions() }),
      });
      body = await response.json();
      if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
    } catch (e) {
      body = { valid: false, error: String(e.message || e) };
    }
    if (asked !== latest) return; // an older answer arriving late
    box.classList.remove("loading");
    if (body.valid) {
      const template = body.count === 1 ? box.dataset.one : box.dataset.many;
      count.textContent = template.replace("%(n)s", body.count.toLocaleString());
      text.textContent = body.text;
      error.textContent = "";
      box.classList.remove("invalid");
    } else {
      count.textContent = box.dataset.invalid;
      text.textContent = "";
      error.textContent = body.error;
      box.classList.add("invalid");
    }
  }

  area.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
  refresh();
})();
