// The pipeline board: drag a deal card onto another stage to move it. The move is saved through
// the API (POST /api/v1/deals/{id}/move) with the page's CSRF token; a lost stage asks why.
(function () {
  "use strict";
  const board = document.querySelector("[data-board]");
  if (!board || board.dataset.canMove !== "true") return;
  const csrf = board.dataset.csrf;
  const moveUrl = (id) => board.dataset.moveUrl.replace("/0/", "/" + id + "/");
  const status = document.querySelector("[data-board-status]");
  const dialog = document.querySelector("dialog.reason");
  let dragged = null;

  function say(text, isError) {
    if (!status) return;
    status.textContent = text;
    status.className = "board-status message " + (isError ? "message-error" : "message-success");
  }

  function money(value) {
    return Number(value).toLocaleString(document.documentElement.lang || undefined, {
      minimumFractionDigits: 2, maximumFractionDigits: 2,
    });
  }

  function recount(column) {
    const cards = column.querySelectorAll(".deal-card");
    let total = 0;
    cards.forEach((card) => { total += Number(card.dataset.amount); });
    const shown = column.querySelector("[data-count]");
    const extra = Number(shown.dataset.hidden || 0);
    shown.textContent = String(cards.length + extra);
    const sum = column.querySelector("[data-total]");
    sum.dataset.value = String(Number(sum.dataset.hiddenValue || 0) + total);
    sum.textContent = money(sum.dataset.value);
  }

  function askReason() {
    return new Promise((resolve) => {
      if (!dialog) { resolve(null); return; }
      const select = dialog.querySelector("select");
      const note = dialog.querySelector("input[name=note]");
      dialog.returnValue = "";
      dialog.showModal();
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        resolve(dialog.returnValue === "ok" ? { id: Number(select.value), note: note.value } : null);
      });
    });
  }

  async function move(card, column) {
    const from = card.closest(".board-column");
    const body = { stage_id: Number(column.dataset.stage) };
    if (column.dataset.kind === "lost") {
      const reason = await askReason();
      if (!reason) { say(board.dataset.msgCancelled, false); return; }
      body.lost_reason_id = reason.id;
      body.note = reason.note;
    }
    card.classList.add("saving");
    let response;
    try {
      response = await fetch(moveUrl(card.dataset.deal), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      });
    } catch (error) {
      card.classList.remove("saving");
      say(board.dataset.msgOffline, true);
      return;
    }
    card.classList.remove("saving");
    if (!response.ok) {
      let message = board.dataset.msgFailed;
      try {
        const payload = await response.json();
        const fields = payload.error.fields || {};
        message = [payload.error.message].concat(...Object.values(fields)).join(" ");
      } catch (ignored) { /* not JSON: keep the generic message */ }
      say(message, true);
      return;
    }
    column.querySelector(".column-cards").prepend(card);
    card.dataset.stage = column.dataset.stage;
    recount(from);
    recount(column);
    say(board.dataset.msgMoved.replace("{deal}", card.dataset.name).replace("{stage}", column.dataset.name), false);
  }

  board.querySelectorAll(".deal-card").forEach((card) => {
    card.setAttribute("draggable", "true");
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.deal);
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      dragged = null;
    });
  });

  board.querySelectorAll(".board-column").forEach((column) => {
    column.addEventListener("dragover", (event) => {
      if (!dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("drop-target");
    });
    column.addEventListener("dragleave", (event) => {
      if (!column.contains(event.relatedTarget)) column.classList.remove("drop-target");
    });
    column.addEventListener("drop", (event) => {
      event.preventDefault();
      column.classList.remove("drop-target");
      const card = dragged;
      if (!card || card.dataset.stage === column.dataset.stage) return;
      move(card, column);
    });
  });
})();
