// An account or a deal: its contacts with a cell phone and their authorization per category; a
// phone number opens Send a Text, "Conversation" the texts to and from the person.
import { call, enc, ApiError } from "./api.js";
import { h, announce } from "./dom.js";
import { CATEGORIES, STATUS_WORDS, categoryName, explain, phoneWords } from "./words.js";
import { openAuthorization } from "./authorization.js";
import { sendForm } from "./send.js";
import { conversation } from "./conversation.js";

/** Renders the screen into `main`; `app` holds the dealer, templates and the screen's cleanups. */
export async function recordScreen(main, app, kind, id) {
  const what = kind === "deal" ? "Deal" : "Account";
  const heading = h("h2", { id: "screen-title", tabindex: "-1" }, `${what} ${id}`);
  const table = h("table", { class: "contacts", "aria-describedby": "contacts-caption" });
  const panel = h("section", { id: "contact-panel", "aria-live": "off" });
  main.replaceChildren(heading, h("p", { id: "contacts-caption" }, "Contacts with a cell phone, and what each has authorized us to text about."), table, panel);
  heading.focus();

  let contacts = [];
  /** A contact's button in the table as it is now (a redraw replaces the elements). */
  const buttonOf = (contactId, selector) => table.querySelector(`tr[data-contact="${CSS.escape(contactId)}"] ${selector}`);
  const path = `/v1/${kind === "deal" ? "deals" : "accounts"}/${enc(id)}/contacts?limit=100`;
  const screen = {
    kind,
    id,
    contact: (contactId) => contacts.find((c) => c.id === contactId),
    /** Reads the contacts again and redraws the table; the fresh list. */
    async reload() {
      let page = await call("GET", path);
      const all = [...page.contacts];
      for (let pages = 1; page.nextCursor && pages < 10; pages += 1) {
        page = await call("GET", `${path}&cursor=${enc(page.nextCursor)}`);
        all.push(...page.contacts);
      }
      contacts = all;
      drawTable();
      return contacts;
    },
  };

  function drawTable() {
    const head = h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Name"),
      h("th", { scope: "col" }, "Cell phone"),
      CATEGORIES.map((c) => h("th", { scope: "col" }, categoryName(c))),
      h("th", { scope: "col" }, "Actions")));
    const rows = contacts.map((c) => h("tr", { dataset: { contact: c.id } },
      h("th", { scope: "row" }, c.name),
      h("td", {}, h("button", {
        type: "button", class: "link phone", "aria-controls": "contact-panel",
        "aria-label": `${phoneWords(c.phone)}: send a text to ${c.name}`,
        onclick: () => showSend(c.id, () => buttonOf(c.id, "button.phone")),
      }, phoneWords(c.phone))),
      CATEGORIES.map((cat) => h("td", { dataset: { category: cat } },
        h("span", { class: `badge ${c.authorizations[cat]}` }, STATUS_WORDS[c.authorizations[cat]]))),
      h("td", { class: "actions" },
        h("button", {
          type: "button", "aria-haspopup": "dialog",
          "aria-label": `Add/Change Texting Authorization for ${c.name}`,
          onclick: () => openAuthorization(app, screen, c.id, () => buttonOf(c.id, "button[aria-haspopup]")),
        }, "Add/Change Texting Authorization"),
        h("button", {
          type: "button", class: "open-conversation", "aria-controls": "contact-panel",
          "aria-label": `Conversation with ${c.name}`,
          onclick: () => showConversation(c.id, () => buttonOf(c.id, "button.open-conversation")),
        }, "Conversation"))));
    const body = rows.length ? rows : [h("tr", {}, h("td", { colspan: 7 }, `No contacts with a cell phone on this ${what.toLowerCase()}.`))];
    // A redraw (a poll answering) must not take the keyboard's place away: the same button of the
    // same contact gets focus back.
    const active = table.contains(document.activeElement) ? document.activeElement : null;
    const row = active?.closest("tr")?.dataset.contact;
    const slot = active?.matches("button") ? [...active.classList].join(".") || "[aria-haspopup]" : null;
    table.replaceChildren(head, h("tbody", {}, body));
    if (row && slot) {
      const selector = slot === "[aria-haspopup]" ? "button[aria-haspopup]" : `button.${slot}`;
      buttonOf(row, selector)?.focus();
    }
  }

  function closePanel() {
    app.stopPanel();
    panel.replaceChildren();
  }

  function showSend(contactId, opener) {
    closePanel();
    const c = screen.contact(contactId);
    panel.append(sendForm(app, screen, c, () => { closePanel(); opener()?.focus(); }));
    panel.querySelector("h3").focus();
  }

  function showConversation(contactId, opener) {
    closePanel();
    const c = screen.contact(contactId);
    panel.append(conversation(app, screen, c, () => { closePanel(); opener()?.focus(); }));
    panel.querySelector("h3").focus();
  }

  try {
    await screen.reload();
    announce(`${what} ${id}: ${contacts.length} ${contacts.length === 1 ? "contact" : "contacts"}.`);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    table.replaceChildren();
    main.append(h("p", { class: "refused", role: "alert" }, explain(error)));
  }
  return screen;
}
