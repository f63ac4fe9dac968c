// The segment list's counts, fetched one at a time so the page shows at once on a big database.
(function () {
  "use strict";
  const cells = Array.from(document.querySelectorAll("[data-count-url]"));
  (async function () {
    for (const cell of cells) {
      try {
        const response = await fetch(cell.dataset.countUrl, { credentials: "same-origin" });
        const body = await response.json();
        cell.textContent = response.ok ? body.count.toLocaleString() : cell.dataset.invalid;
      } catch (e) {
        cell.textContent = cell.dataset.invalid;
      }
    }
  })();
})();
