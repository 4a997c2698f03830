// The reference portal: staff sign in (the user pool), or arrive signed in from the DMS with the
// token in the link (#token=...), which is kept for the session and taken out of the address bar;
// #account=<id>, #deal=<id> and #queues open those screens.
import { call, session, ApiError } from "./api.js";
import { h, announce } from "./dom.js";
import { explain } from "./words.js";
import { recordScreen } from "./record.js";
import { queuesScreen } from "./queues.js";
import { signInScreen } from "./signin.js";

const main = document.getElementById("main");

/** Timers by scope: a panel's stop when the panel closes, a screen's when the screen changes. */
const timers = { panel: new Set(), dialog: new Set(), screen: new Set() };
const app = {
  dealer: { name: "", timeZone: "America/New_York" },
  every(ms, work, scope = "panel") {
    const id = setInterval(work, ms);
    const stop = () => { clearInterval(id); timers[scope].delete(stop); };
    timers[scope].add(stop);
    return stop;
  },
  stopPanel() { [...timers.panel].forEach((stop) => stop()); },
  stopScreen() { ["panel", "dialog", "screen"].forEach((s) => [...timers[s]].forEach((stop) => stop())); },
};

function hashParams() {
  return new URLSearchParams(location.hash.replace(/^#/, ""));
}

/** A token in the link goes to sessionStorage and out of the address bar (and its history entry). */
function takeToken() {
  const params = hashParams();
  const token = params.get("token");
  if (!token) return;
  session.keep(token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

async function route() {
  takeToken();
  app.stopScreen();
  const dialog = document.getElementById("auth-dialog");
  if (dialog.open) dialog.close();
  const params = hashParams();
  if (!session.token()) {
    signInScreen(main, (token) => {
      session.keep(token);
      location.reload();
    });
    return;
  }
  if (params.has("account")) await recordScreen(main, app, "account", params.get("account"));
  else if (params.has("deal")) await recordScreen(main, app, "deal", params.get("deal"));
  else if (params.has("queues")) await queuesScreen(main, app, params.get("queues") || "replies");
  else {
    main.replaceChildren(h("h2", { id: "screen-title", tabindex: "-1" }, "Texting"),
      h("p", {}, "Open an account or a deal above to see its contacts and text them, or go to the texting queues."));
    main.querySelector("h2").focus();
  }
}

async function start() {
  takeToken();
  const openForm = document.getElementById("open-form");
  openForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const kind = document.getElementById("open-kind").value;
    const id = document.getElementById("open-id").value.trim();
    if (id) location.hash = `${kind}=${encodeURIComponent(id)}`;
  });
  if (session.token()) {
    try {
      app.dealer = await call("GET", "/v1/dealer");
      const user = session.user() || "staff";
      document.getElementById("who").replaceChildren(`${app.dealer.name} · ${user} `,
        h("button", { type: "button", id: "sign-out", onclick: () => { session.forget(); location.hash = ""; location.reload(); } },
          "Sign out"));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      document.getElementById("who").textContent = "";
      main.replaceChildren(h("p", { class: "refused", role: "alert" }, explain(error)));
      if (error.status === 401) session.forget();
      return;
    }
  }
  window.addEventListener("hashchange", () => route().catch(report));
  await route();
}

function report(error) {
  console.error(error);
  announce("Something went wrong on this page; reload it.");
}

start().catch(report);
