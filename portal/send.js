// Send a Text: schedule (in the contact's time), template with a field per placeholder, live
// preview with its segments, notes, Complete, and a confirmation that says what happened.
import { call, enc, newKey, ApiError } from "./api.js";
import { h, debounce } from "./dom.js";
import { instantIn, spoken, clock, wallClock } from "./dates.js";
import { REASONS, categoryName, explain, fieldLabel, phoneWords } from "./words.js";

const INPUT_TYPES = { date: "date", time: "time", url: "url" };
const FINAL = new Set(["sent", "delivered", "failed", "suppressed", "canceled"]);

export function sendForm(app, screen, contact, close) {
  const zone = contact.localTimeZone || app.dealer.timeZone || "America/New_York";
  const firstName = contact.name.split(/\s+/)[0];
  let templates = [];
  let sendKey = null; // one Idempotency-Key per text meant, kept if Complete is pressed again after no answer

  const schedule = h("input", { type: "checkbox", id: "schedule" });
  const date = h("input", { type: "date", id: "schedule-date", required: true });
  const time = h("input", { type: "time", id: "schedule-time", required: true });
  const when = h("fieldset", { id: "schedule-when", hidden: true },
    h("legend", {}, `When, in ${contact.name}'s time (${zone})`),
    h("label", { for: "schedule-date" }, "Date"), date,
    h("label", { for: "schedule-time" }, "Time"), time);
  const select = h("select", { id: "template", required: true }, h("option", { value: "" }, "Choose a template"));
  const fields = h("div", { id: "template-fields", class: "fields" });
  const previewBody = h("p", { id: "preview-body", class: "preview-body" }, "Choose a template to see the text.");
  const previewMeta = h("p", { id: "preview-meta", class: "preview-meta" });
  const notes = h("textarea", { id: "notes", rows: 2, maxlength: 2000 });
  const complete = h("button", { type: "submit", class: "primary" }, "Complete");
  const result = h("div", { id: "send-result", role: "status", "aria-live": "polite" });

  const form = h("form", { class: "send", novalidate: true, "aria-labelledby": "send-title" },
    h("div", { class: "check" }, schedule, h("label", { for: "schedule" }, "Schedule Message")),
    when,
    h("label", { for: "template" }, "Template"), select,
    fields,
    h("div", { class: "preview", role: "group", "aria-labelledby": "preview-title" },
      h("h4", { id: "preview-title" }, "Preview"), previewBody, previewMeta),
    h("label", { for: "notes" }, "Notes ", h("span", { class: "hint" }, "(for staff; not texted)")), notes,
    h("div", { class: "buttons" }, complete, h("button", { type: "button", onclick: close }, "Close")),
    result);

  const section = h("section", { class: "panel", "aria-labelledby": "send-title" },
    h("h3", { id: "send-title", tabindex: "-1" }, `Send a text to ${contact.name}, ${phoneWords(contact.phone)}`),
    form);

  schedule.addEventListener("change", () => {
    when.hidden = !schedule.checked;
    if (schedule.checked && !date.value) {
      const soon = wallClock(zone, new Date(Date.now() + 60 * 60 * 1000));
      date.value = soon.date;
      time.value = soon.time;
    }
  });

  const current = () => templates.find((t) => t.name === select.value);
  const placeholders = (t) => (t ? t.placeholders.filter((p) => p !== "dealerName") : []);
  const values = () => Object.fromEntries([...fields.querySelectorAll("input")].map((i) => [i.name, i.value.trim()]));

  function drawFields() {
    const t = current();
    const types = (t && t.placeholderTypes) || {};
    fields.replaceChildren(...placeholders(t).map((name) => {
      const kind = types[name] || "text";
      const input = h("input", {
        id: `var-${name}`, name, required: true, autocomplete: "off",
        type: INPUT_TYPES[kind] || "text", inputmode: kind === "money" ? "decimal" : undefined,
        "aria-describedby": kind === "money" ? `hint-${name}` : undefined,
      });
      if (name === "firstName") input.value = firstName;
      return h("div", { class: "field" },
        h("label", { for: `var-${name}` }, fieldLabel(name)), input,
        kind === "money" ? h("span", { id: `hint-${name}`, class: "hint" }, "dollars, e.g. 412.50") : null);
    }));
  }

  function draft(t, vals) {
    return t.body.replace(/\{(\w+)\}/g, (whole, name) => (name === "dealerName" ? app.dealer.name : vals[name] || whole));
  }

  const preview = debounce(async () => {
    const t = current();
    if (!t) {
      previewBody.textContent = "Choose a template to see the text.";
      previewMeta.textContent = "";
      return;
    }
    const vals = values();
    const missing = placeholders(t).filter((p) => !vals[p]);
    if (missing.length) {
      previewBody.textContent = draft(t, vals);
      previewMeta.textContent = `Fill in ${missing.map(fieldLabel).join(", ")} to see the final text and its length.`;
      return;
    }
    try {
      const p = await call("POST", "/v1/messages/preview", { body: { template: t.name, variables: vals } });
      if (select.value !== t.name) return;
      previewBody.textContent = p.body;
      const chars = [...p.body].length;
      previewMeta.textContent = `${p.segments} ${p.segments === 1 ? "segment" : "segments"} · ${chars} characters · ${p.encoding === "gsm7" ? "GSM-7" : "Unicode (70 characters a segment)"} · ${categoryName(p.category)}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      previewBody.textContent = draft(t, vals);
      previewMeta.textContent = explain(error, contact.name);
    }
  }, 250);

  select.addEventListener("change", () => { drawFields(); preview(); });
  form.addEventListener("input", () => { sendKey = null; });
  fields.addEventListener("input", preview);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    result.className = "";
    if (!select.value) {
      say("refused", "Choose a template first.");
      select.focus();
      return;
    }
    const empty = [...fields.querySelectorAll("input")].find((i) => !i.value.trim());
    if (empty) {
      say("refused", `Fill in ${fieldLabel(empty.name)}.`);
      empty.focus();
      return;
    }
    const body = { contactId: contact.id, template: select.value, variables: values() };
    if (notes.value.trim()) body.notes = notes.value.trim();
    body[screen.kind === "deal" ? "dealId" : "accountId"] = screen.id;
    if (schedule.checked) {
      if (!date.value || !time.value) {
        say("refused", "Choose the date and time to send it, or uncheck Schedule Message.");
        (date.value ? time : date).focus();
        return;
      }
      const at = instantIn(zone, date.value, time.value);
      if (at.getTime() < Date.now()) {
        say("refused", `${spoken(zone, at.toISOString())} has passed. Choose a time in the future.`);
        date.focus();
        return;
      }
      body.scheduledAt = at.toISOString();
    }
    sendKey = sendKey || newKey();
    complete.disabled = true;
    say("", "Sending…");
    try {
      const accepted = await call("POST", "/v1/messages", { body, idempotencyKey: sendKey });
      sendKey = null;
      confirm(accepted);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say("refused", explain(error, contact.name));
    } finally {
      complete.disabled = false;
    }
  });

  function say(kind, text) {
    result.className = kind;
    result.textContent = text;
  }

  function confirm(accepted) {
    const to = `${contact.name}, ${phoneWords(contact.phone)}`;
    if (accepted.status === "scheduled") {
      say("ok", `Scheduled for ${spoken(zone, accepted.sendAt)} (${contact.name}'s time). It goes to ${to} then.`);
    } else if (accepted.status === "deferred") {
      say("ok", `Held until ${spoken(zone, accepted.deferredUntil || accepted.sendAt)} because of ${REASONS[accepted.statusReason] || accepted.statusReason}. It goes to ${to} then, by itself.`);
    } else {
      say("ok", `Sending to ${to}…`);
      follow(accepted.messageId, to);
    }
  }

  /** Follows a queued text until the carrier took it (or refused it), for up to 30 s. */
  function follow(messageId, to) {
    const started = Date.now();
    const stop = app.every(1000, async () => {
      const m = await call("GET", `/v1/messages/${enc(messageId)}`).catch(() => null);
      if (m && FINAL.has(m.status)) {
        stop();
        const at = clock(zone, m.history[m.history.length - 1].at);
        if (m.status === "sent" || m.status === "delivered") {
          say("ok", `${m.status === "delivered" ? "Delivered" : "Sent"} to ${to} at ${at} (${contact.name}'s time).`);
        } else {
          say("refused", `Not sent: ${m.statusReason || m.status}. See Texting queues, Failed sends.`);
        }
      } else if (Date.now() - started > 30000) {
        stop();
        say("ok", `Queued for ${to}; the carrier has not confirmed it yet. Its status is in the conversation.`);
      }
    });
  }

  call("GET", "/v1/templates").then(({ templates: list }) => {
    templates = list;
    const group = (label, items) => h("optgroup", { label },
      items.map((t) => h("option", { value: t.name }, `${t.title} (${categoryName(t.category).toLowerCase()})`)));
    const own = list.filter((t) => !t.builtIn);
    select.append(...(own.length ? [group("Dealer templates", own)] : []), group("Standard templates", list.filter((t) => t.builtIn)));
  }).catch((error) => say("refused", error instanceof ApiError ? explain(error) : String(error)));

  return section;
}
