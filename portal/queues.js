// Texting queues: the open count of each, a queue's items, Claim and Resolve (with a note).
import { call, enc, session, ApiError } from "./api.js";
import { h, announce } from "./dom.js";
import { spoken } from "./dates.js";
import { QUEUE_NAMES, explain, phoneWords } from "./words.js";

export async function queuesScreen(main, app, chosen) {
  const zone = app.dealer.timeZone || "America/New_York";
  const me = session.user();
  const heading = h("h2", { id: "screen-title", tabindex: "-1" }, "Texting queues");
  const nav = h("ul", { class: "queues", "aria-label": "Queues" });
  const items = h("section", { id: "queue-items", "aria-labelledby": "items-title" });
  const message = h("p", { id: "queue-message", role: "status" });
  main.replaceChildren(heading, nav, message, items);
  heading.focus();
  let current = chosen || "replies";

  async function drawCounts() {
    const { queues } = await call("GET", "/v1/queues");
    nav.replaceChildren(...queues.map((q) => h("li", {},
      h("a", { href: `#queues=${q.name}`, "aria-current": q.name === current ? "page" : undefined },
        `${QUEUE_NAMES[q.name] || q.name} `, h("span", { class: "count" }, `${q.openCount} open`)))));
  }

  async function drawItems() {
    const page = await call("GET", `/v1/queues/${enc(current)}/items?status=all&order=oldest&limit=100`);
    const visible = page.items.filter((i) => i.status !== "resolved" || i.resolvedBy === me);
    const rows = visible.map((item) => {
      const note = h("input", { id: `note-${item.id}`, maxlength: 2000, "aria-label": `Note for item from ${phoneWords(item.phone) || "the dealer"}` });
      const actions = [];
      if (item.status === "open") actions.push(h("button", { type: "button", onclick: () => act(item, "claim") }, "Claim"));
      if (item.status !== "resolved") actions.push(note, h("button", { type: "button", onclick: () => act(item, "resolve", note.value) }, "Resolve"));
      return h("tr", { dataset: { item: item.id } },
        h("td", {}, spoken(zone, item.createdAt)),
        h("td", {}, item.phone ? phoneWords(item.phone) : "—", item.contactId ? ` (${item.contactId})` : ""),
        h("td", {}, item.text || item.kind),
        h("td", { class: "state" }, item.status === "claimed" ? `Claimed by ${item.claimedBy}` : item.status === "resolved" ? `Resolved by ${item.resolvedBy}` : "Open"),
        h("td", { class: "actions" }, actions));
    });
    items.replaceChildren(
      h("h3", { id: "items-title" }, QUEUE_NAMES[current] || current),
      rows.length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["Received", "From", "Text", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))), h("tbody", {}, rows))
        : h("p", {}, "Nothing waiting here."));
  }

  async function act(item, action, note) {
    try {
      const body = action === "resolve" && note && note.trim() ? { note: note.trim() } : undefined;
      await call("POST", `/v1/queues/${enc(current)}/items/${enc(item.id)}/${action}`, { body });
      await Promise.all([drawCounts(), drawItems()]);
      message.className = "ok";
      message.textContent = action === "claim" ? "Claimed: it is yours to work." : "Resolved.";
      announce(message.textContent);
      items.querySelector(`tr[data-item="${CSS.escape(item.id)}"] button`)?.focus();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.className = "refused";
      message.textContent = explain(error);
      await drawItems().catch(() => {});
    }
  }

  try {
    await Promise.all([drawCounts(), drawItems()]);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    message.className = "refused";
    message.textContent = explain(error);
  }
  app.every(5000, () => drawCounts().catch(() => {}), "screen");
}
