// The texting API as the portal calls it: the staff token from the session, JSON in and out, and
// every refusal as an ApiError carrying the problem+json the API answered.
import { API_BASE, USER_CLAIM } from "./config.js";

const TOKEN_KEY = "texting.portalToken";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
  get slug() {
    const type = this.problem.type || "";
    return type.slice(type.lastIndexOf("/") + 1);
  }
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  keep: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
  /** The staff user the token names, as the API reads it (the stack's user claim). */
  user() {
    const claims = this.claims() || {};
    return claims[USER_CLAIM] || claims.sub || null;
  },
  /** The staff user and dealer the token names (its claims; the API checks the signature). */
  claims() {
    const token = this.token();
    if (!token) return null;
    try {
      const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch {
      return null;
    }
  },
};

/** One request; resolves to the parsed body, rejects with an ApiError (status 0: no answer). */
export async function call(method, path, { body, idempotencyKey } = {}) {
  const headers = { Accept: "application/json" };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  let response;
  try {
    response = await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, {
      title: "The texting service did not answer",
      detail: `No answer from ${API_BASE}. Check the connection and try again; nothing was lost.`,
    });
  }
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = text;
  }
  if (!response.ok) {
    const problem = value && typeof value === "object" ? value : { title: response.statusText, detail: String(value || "") };
    throw new ApiError(response.status, problem);
  }
  return value;
}

/** A fresh Idempotency-Key: one per text staff mean to send, kept across retries of it. */
export function newKey() {
  return crypto.randomUUID();
}

export const enc = encodeURIComponent;
