// "Add/Change Texting Authorization": per category, Authorize (texts an approval number), Approval #
// and Verify, Unsubscribe. While a number is out, the dialog reads the contact again every two
// seconds, so a reply of "Agree" shows by itself.
import { call, enc, ApiError } from "./api.js";
import { h, announce, openModal } from "./dom.js";
import { clock } from "./dates.js";
import { CATEGORIES, STATUS_WORDS, categoryName, explain, phoneWords } from "./words.js";

export function openAuthorization(app, screen, contactId, opener) {
  const dialog = document.getElementById("auth-dialog");
  let contact = screen.contact(contactId);
  const zone = contact.localTimeZone || app.dealer.timeZone || "America/New_York";
  const verifying = new Set(); // categories staff verified here (anything else authorized meanwhile came by text)
  const rows = new Map(); // category -> { el, shown }

  const list = h("div", { class: "categories" });
  dialog.replaceChildren(
    h("h2", { id: "auth-title" }, "Texting authorization"),
    h("p", { id: "auth-desc" }, `${contact.name}, ${phoneWords(contact.phone)}. Authorize texts an approval number to the person: type it in below and Verify, or they reply Agree.`),
    list,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Close")));
  dialog.setAttribute("aria-labelledby", "auth-title");
  dialog.setAttribute("aria-describedby", "auth-desc");

  function draw(category, note) {
    const status = contact.authorizations[category];
    const expires = contact.pendingExpiresAt && contact.pendingExpiresAt[category];
    const name = categoryName(category);
    const id = `auth-${category}`;
    const message = h("p", { id: `${id}-message`, class: "message", role: "status" }, note || "");
    const controls = [];
    if (status === "pending") {
      const code = h("input", {
        id: `${id}-code`, inputmode: "numeric", autocomplete: "one-time-code", maxlength: 6, pattern: "[0-9]{6}",
        "aria-describedby": `${id}-message`,
      });
      controls.push(
        h("p", { class: "pending" }, expires ? `Approval number texted; it expires at ${clock(zone, expires)}.` : "Approval number texted."),
        h("form", { class: "verify", novalidate: true, onsubmit: (e) => { e.preventDefault(); verify(category, code); } },
          h("label", { for: code.id }, `Approval # for ${name}`), code,
          h("button", { type: "submit" }, "Verify"),
          h("button", { type: "button", onclick: () => authorize(category) }, "Text a new number")));
    } else if (status === "authorized") {
      controls.push(h("button", { type: "button", onclick: () => unsubscribe(category) }, `Unsubscribe from ${name}`));
    } else {
      controls.push(h("button", { type: "button", onclick: () => authorize(category) }, `Authorize ${name}`));
    }
    const el = h("section", { class: "category", "aria-labelledby": `${id}-name` },
      h("h3", { id: `${id}-name` }, name, " ", h("span", { class: `badge ${status}`, id: `${id}-status` }, STATUS_WORDS[status])),
      controls, message);
    const old = rows.get(category);
    const hadFocus = old && old.el.contains(document.activeElement);
    if (old) old.el.replaceWith(el);
    else list.append(el);
    rows.set(category, { el, shown: `${status}|${expires || ""}` });
    if (hadFocus) (el.querySelector("input, button") || el).focus();
    return el;
  }

  async function authorize(category) {
    const name = categoryName(category);
    try {
      const answer = await call("POST", `/v1/contacts/${enc(contactId)}/authorizations`, { body: { category } });
      await refresh();
      const note = `${answer.resent ? "Texted the approval number again" : "Approval number texted"} to ${phoneWords(contact.phone)}; it expires at ${clock(zone, answer.expiresAt)}.`;
      const el = draw(category, note);
      announce(`${name}: ${note}`);
      el.querySelector("input")?.focus();
    } catch (error) {
      fail(category, error);
    }
  }

  async function verify(category, input) {
    const code = input.value.trim();
    if (!/^\d{6}$/.test(code)) {
      draw(category, "Type the 6-digit approval number the person read to you.").querySelector("input").focus();
      return;
    }
    verifying.add(category);
    try {
      await call("POST", `/v1/contacts/${enc(contactId)}/authorizations/${category}/verify`, { body: { code } });
      await refresh();
      const note = `${categoryName(category)} authorized.`;
      draw(category, note).querySelector("button")?.focus();
      announce(note);
    } catch (error) {
      verifying.delete(category);
      if (error instanceof ApiError && error.slug === "code-expired") await refresh().catch(() => {});
      fail(category, error);
      rows.get(category).el.querySelector("input")?.focus();
    }
  }

  async function unsubscribe(category) {
    try {
      await call("DELETE", `/v1/contacts/${enc(contactId)}/authorizations/${category}`);
      await refresh();
      const note = `Unsubscribed from ${categoryName(category).toLowerCase()} texts.`;
      draw(category, note).querySelector("button")?.focus();
      announce(note);
    } catch (error) {
      fail(category, error);
    }
  }

  function fail(category, error) {
    if (!(error instanceof ApiError)) throw error;
    const text = explain(error, contact.name);
    const el = draw(category, text);
    el.querySelector(".message").classList.add("refused");
    announce(`${categoryName(category)}: ${text}`);
  }

  /** Reads the contact again; redraws the categories whose status changed (a reply of Agree, STOP, ...). */
  async function refresh() {
    const before = contact;
    await screen.reload();
    contact = screen.contact(contactId) || contact;
    for (const category of CATEGORIES) {
      const now = contact.authorizations[category];
      const shown = `${now}|${(contact.pendingExpiresAt || {})[category] || ""}`;
      if (rows.get(category)?.shown === shown) continue;
      let note;
      if (now === "authorized" && before.authorizations[category] === "pending" && !verifying.has(category)) {
        note = `${contact.name} replied Agree: ${categoryName(category).toLowerCase()} texts are authorized.`;
        announce(note);
      } else if (now === "revoked" && before.authorizations[category] === "authorized") {
        note = `${contact.name} asked to stop ${categoryName(category).toLowerCase()} texts.`;
        announce(note);
      }
      draw(category, note);
    }
  }

  CATEGORIES.forEach((category) => draw(category));
  const stop = app.every(2000, () => {
    if (CATEGORIES.some((c) => contact.authorizations[c] === "pending")) refresh().catch(() => {});
  }, "dialog");
  openModal(dialog, opener, stop);
}
