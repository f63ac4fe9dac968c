// The template editor: the formatting toolbar over each body, and the live preview (as any
// contact, in either language) from POST /api/v1/email/templates/preview as you type.
(function () {
  "use strict";
  const form = document.getElementById("template-form");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const frame = document.getElementById("preview-frame");
  const subject = document.getElementById("preview-subject");
  const problems = document.getElementById("preview-errors");
  const contactInput = document.getElementById("preview-contact");
  const contactList = document.getElementById("preview-contacts");
  const languageSelect = document.getElementById("preview-language");
  const testContact = document.getElementById("test-contact");
  const testLanguage = document.getElementById("test-language");
  let contactId = null;

  function insert(textarea, before, after, placeholder) {
    const start = textarea.selectionStart, end = textarea.selectionEnd;
    const selected = textarea.value.slice(start, end) || placeholder || "";
    textarea.setRangeText(before + selected + after, start, end, "end");
    textarea.focus();
    schedule();
  }

  form.querySelectorAll(".toolbar").forEach(function (bar) {
    const textarea = document.getElementById(bar.dataset.for);
    bar.addEventListener("click", function (event) {
      const button = event.target.closest("button");
      if (!button) return;
      if (button.dataset.wrap) {
        const tag = button.dataset.wrap;
        insert(textarea, "<" + tag + ">", "</" + tag + ">", "");
      } else if (button.hasAttribute("data-list")) {
        insert(textarea, "<ul>\n  <li>", "</li>\n</ul>", "");
      } else if (button.hasAttribute("data-link")) {
        const url = window.prompt(button.dataset.prompt, "https://");
        if (!url) return;
        const cls = button.hasAttribute("data-button") ? ' class="button"' : "";
        insert(textarea, '<a href="' + url.replace(/"/g, "&quot;") + '"' + cls + ">", "</a>", url);
      } else if (button.hasAttribute("data-image")) {
        const url = window.prompt(button.dataset.prompt, "https://");
        if (!url) return;
        insert(textarea, '<img src="' + url.replace(/"/g, "&quot;") + '" alt="">', "", "");
      }
    });
    bar.querySelector("select[data-field]").addEventListener("change", function (event) {
      if (event.target.value) insert(textarea, "{{ " + event.target.value + " }}", "", "");
      event.target.value = "";
    });
  });

  function content() {
    const out = {};
    ["en", "es"].forEach(function (language) {
      const get = function (part) {
        const el = form.querySelector("[name=" + part + "_" + language + "]");
        return el ? el.value : "";
      };
      out[language] = { subject: get("subject"), preheader: get("preheader"), body: get("body") };
    });
    if (!out.es.subject && !out.es.preheader && !out.es.body) delete out.es;
    return out;
  }

  let timer = null;
  let sequence = 0;
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  }

  function refresh() {
    const mine = ++sequence;
    const language = languageSelect.value;
    if (testLanguage) testLanguage.value = language;
    fetch(form.dataset.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ content: content(), contact_id: contactId, language: language }),
    })
      .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
      .then(function (result) {
        if (mine !== sequence) return;
        const ok = result[0], body = result[1];
        if (ok) {
          problems.hidden = true;
          subject.textContent = body.subject;
          frame.srcdoc = body.html;
        } else {
          const error = body.error || {};
          const lines = [];
          Object.keys(error.fields || {}).forEach(function (field) {
            error.fields[field].forEach(function (message) { lines.push(field + ": " + message); });
          });
          problems.textContent = lines.join("\n") || error.message || "";
          problems.hidden = false;
        }
      })
      .catch(function () {});
  }

  let searchTimer = null;
  contactInput.addEventListener("input", function () {
    const value = contactInput.value.trim();
    const chosen = Array.from(contactList.options).find(function (option) { return option.value === value; });
    if (chosen) {
      contactId = parseInt(chosen.dataset.id, 10);
      if (testContact) testContact.value = contactId;
      schedule();
      return;
    }
    if (!value) {
      contactId = null;
      if (testContact) testContact.value = "";
      schedule();
      return;
    }
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      fetch(form.dataset.contactsUrl + "?limit=10&search=" + encodeURIComponent(value), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (body) {
          contactList.innerHTML = "";
          (body.items || []).forEach(function (contact) {
            const option = document.createElement("option");
            const name = [contact.first_name, contact.last_name].filter(Boolean).join(" ");
            option.value = (name ? name + " " : "") + "<" + (contact.email || "#" + contact.id) + ">";
            option.dataset.id = contact.id;
            contactList.appendChild(option);
          });
        })
        .catch(function () {});
    }, 200);
  });

  languageSelect.addEventListener("change", schedule);
  form.addEventListener("input", schedule);
  refresh();
})();
