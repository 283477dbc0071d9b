// The campaign page: show the event select only for an event audience, count the body's
// characters and segments as staff type, confirm the irreversible buttons, and refresh
// the progress panel while the campaign is sending. Plain JS, no framework.
"use strict";

(function () {
  const POLL_MILLISECONDS = 5000;
  const TYPING_PAUSE_MILLISECONDS = 300;

  function campaignUrls() {
    const script = document.getElementById("campaign-urls");
    return script ? JSON.parse(script.textContent) : {};
  }

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function showEventOnlyForEventAudience() {
    const radios = document.querySelectorAll("input[name=audience]");
    const eventRow = document.querySelector(".form-row.field-event");
    if (!radios.length || !eventRow) {
      return;
    }
    const update = function () {
      const checked = document.querySelector("input[name=audience]:checked");
      eventRow.style.display = checked && checked.value === "event" ? "" : "none";
    };
    radios.forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  function describeSegments(result) {
    if (result.template_error) {
      return result.template_error;
    }
    let text =
      result.characters + " characters · " + result.encoding + " · " + result.segments +
      (result.segments === 1 ? " segment" : " segments") +
      " (fixed text only: merge values add to it)";
    if (result.non_gsm_characters.length) {
      text += ". UCS-2 because of: " + result.non_gsm_characters.map(function (pair) {
        const replacement = pair[1];
        if (replacement === null) {
          return pair[0];
        }
        return pair[0] + " (GSM: " + (replacement === "" ? "remove it" : replacement) + ")";
      }).join(", ");
    }
    return text;
  }

  function countSegmentsWhileTyping(url) {
    const body = document.getElementById("id_body");
    if (!body || !url) {
      return;
    }
    const output = document.createElement("div");
    output.className = "help campaign-counter";
    output.setAttribute("aria-live", "polite");
    body.insertAdjacentElement("afterend", output);
    let timer = null;
    let latestRequest = 0;
    const refresh = function () {
      const request = ++latestRequest;
      const data = new FormData();
      data.append("body", body.value);
      fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrfToken()},
      })
        .then(function (response) {
          return response.ok ? response.json() : Promise.reject(response.status);
        })
        .then(function (result) {
          if (request === latestRequest) {
            output.textContent = describeSegments(result);
          }
        })
        .catch(function () {
          output.textContent = "";
        });
    };
    body.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, TYPING_PAUSE_MILLISECONDS);
    });
    refresh();
  }

  function confirmIrreversibleButtons() {
    document.addEventListener("submit", function (event) {
      const question = event.target.dataset.confirm;
      if (question && !window.confirm(question)) {
        event.preventDefault();
      }
    });
  }

  function refreshProgressWhileSending(url) {
    const panel = document.getElementById("campaign-progress");
    if (!url || !panel || panel.dataset.sending !== "true") {
      return;
    }
    const timer = setInterval(function () {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          return response.ok ? response.json() : Promise.reject(response.status);
        })
        .then(function (result) {
          document.getElementById("campaign-progress").outerHTML = result.html;
          if (!result.is_sending) {
            clearInterval(timer);
            window.location.reload();  // the state and the buttons changed too
          }
        })
        .catch(function () {});  // a missed refresh is retried on the next tick
    }, POLL_MILLISECONDS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const urls = campaignUrls();
    showEventOnlyForEventAudience();
    countSegmentsWhileTyping(urls.segments);
    confirmIrreversibleButtons();
    refreshProgressWhileSending(urls.progress);
  });
})();
