// The texts to and from a person, newest first (approval codes masked by the API), and an answer in
// staff's own words under the same consent rules as any text.
import { call, enc, newKey, ApiError } from "./api.js";
import { h } from "./dom.js";
import { spoken } from "./dates.js";
import { CATEGORIES, categoryName, explain, phoneWords } from "./words.js";

const READ_AS = { "opt-out": "asked to stop", "opt-in": "asked to start again", agree: "agreed", help: "asked for help", pay: "about a payment", confirm: "confirmed", other: "needs an answer" };
const KIND = { template: "Template", text: "Staff", "approval-code": "Approval number", reply: "Automatic answer" };

export function conversation(app, screen, contact, close) {
  const zone = contact.localTimeZone || app.dealer.timeZone || "America/New_York";
  const list = h("ol", { class: "conversation", "aria-label": "Texts, newest first", tabindex: 0 });
  const answer = h("textarea", { id: "answer", rows: 3, maxlength: 1530, required: true });
  const authorized = CATEGORIES.filter((c) => contact.authorizations[c] === "authorized");
  const category = h("select", { id: "answer-category" },
    (authorized.length ? authorized : CATEGORIES).map((c) => h("option", { value: c }, categoryName(c))));
  const result = h("div", { id: "answer-result", role: "status", "aria-live": "polite" });
  let key = null;

  const form = h("form", { class: "answer", novalidate: true },
    h("label", { for: "answer" }, `Answer ${contact.name}`), answer,
    h("label", { for: "answer-category" }, "About"), category,
    h("div", { class: "buttons" },
      h("button", { type: "submit", class: "primary" }, "Send answer"),
      h("button", { type: "button", onclick: close }, "Close")),
    result);
  form.addEventListener("input", () => { key = null; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!answer.value.trim()) {
      result.className = "refused";
      result.textContent = "Write the answer first.";
      answer.focus();
      return;
    }
    key = key || newKey();
    const body = { contactId: contact.id, body: answer.value.trim(), category: category.value };
    body[screen.kind === "deal" ? "dealId" : "accountId"] = screen.id;
    try {
      const accepted = await call("POST", "/v1/messages", { body, idempotencyKey: key });
      key = null;
      answer.value = "";
      result.className = "ok";
      result.textContent = accepted.status === "deferred"
        ? `Answer held until ${spoken(zone, accepted.sendAt)} (quiet hours); it goes by itself.`
        : accepted.status === "scheduled" ? `Answer scheduled for ${spoken(zone, accepted.sendAt)}.` : "Answer sent.";
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      result.className = "refused";
      result.textContent = explain(error, contact.name);
    }
  });

  async function refresh() {
    const page = await call("GET", `/v1/contacts/${enc(contact.id)}/messages?limit=50`);
    list.replaceChildren(...(page.messages.length ? page.messages.map(entry) : [h("li", {}, "No texts yet.")]));
  }

  function entry(m) {
    const when = spoken(zone, m.at);
    if (m.direction === "inbound") {
      return h("li", { class: "inbound" },
        h("p", { class: "meta" }, `Received ${when} · ${READ_AS[m.readAs] || m.readAs}${m.language !== "en" ? ` · ${m.language}` : ""}`),
        h("p", { class: "body" }, m.body));
    }
    return h("li", { class: "outbound" },
      h("p", { class: "meta" }, `Sent ${when} · ${KIND[m.kind] || m.kind} · ${categoryName(m.category)} · ${m.status}${m.statusReason ? ` (${m.statusReason})` : ""}`),
      h("p", { class: "body" }, m.body));
  }

  const section = h("section", { class: "panel", "aria-labelledby": "conversation-title" },
    h("h3", { id: "conversation-title", tabindex: "-1" }, `Conversation with ${contact.name}, ${phoneWords(contact.phone)}`),
    list, form);
  refresh().catch((error) => { result.className = "refused"; result.textContent = error instanceof ApiError ? explain(error) : String(error); });
  app.every(4000, () => refresh().catch(() => {}));
  return section;
}
