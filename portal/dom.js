// Building the page without innerHTML (every value is text), the one live region that announces
// status changes, and the dialog that keeps focus inside while it is open.

/** h("button", { type: "button", onclick }, "Verify") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Say `text` to screen readers (the polite live region) without moving focus. */
export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A new text node after a tick, so the same words twice are announced twice.
  setTimeout(() => { region.textContent = text; }, 50);
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

/**
 * Open `dialog` modally: the page behind is inert, Tab and Shift+Tab cycle inside, Escape
 * closes, and focus goes back to `opener` when it closes (a function: the opener as it is then,
 * for a page that redrew it meanwhile).
 */
export function openModal(dialog, opener, onClose) {
  const trap = (event) => {
    if (event.key !== "Tab") return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((el) => el.offsetParent !== null);
    if (items.length === 0) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };
  dialog.addEventListener("keydown", trap);
  dialog.addEventListener("close", () => {
    dialog.removeEventListener("keydown", trap);
    if (onClose) onClose();
    const back = typeof opener === "function" ? opener() : opener;
    if (back && back.isConnected) back.focus();
  }, { once: true });
  dialog.showModal();
  const first = dialog.querySelector("[autofocus]") || dialog.querySelector(FOCUSABLE);
  if (first) first.focus();
}

/** Run `work` after `ms` of quiet; each call restarts the wait. */
export function debounce(work, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => work(...args), ms);
  };
}
