// What the portal says: names of things, and every refusal of the API in plain words with the way on.

export const CATEGORIES = ["accounting", "service", "sales", "marketing"];

export const categoryName = (c) => c.charAt(0).toUpperCase() + c.slice(1);

export const STATUS_WORDS = {
  none: "Not authorized",
  pending: "Waiting for approval",
  authorized: "Authorized",
  revoked: "Unsubscribed",
};

export const QUEUE_NAMES = {
  replies: "Replies",
  "failed-sends": "Failed sends",
  authorizations: "Authorizations",
  "automation-failures": "Automation failures",
};

export const REASONS = {
  "quiet-hours": "the contact's quiet hours (texts go out between 8 AM and 9 PM their time, earlier evenings in some states)",
  "frequency-cap": "their state's limit of 3 marketing texts in 24 hours",
};

/** "firstName" -> "First name", "paymentUrl" -> "Payment URL". */
export function fieldLabel(placeholder) {
  const words = placeholder.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase().split(" ");
  const text = words.map((w) => (w === "url" ? "URL" : w)).join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** (312) 555-0142 from +13125550142. */
export function phoneWords(e164) {
  const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164 || "");
  return m ? `(${m[1]}) ${m[2]}-${m[3]}` : e164;
}

/**
 * A refusal in plain words. `who` names the person (their name) where it helps.
 * The API's problem `detail` is kept for what the portal has no better words for.
 */
export function explain(error, who = "This person") {
  const p = error.problem || {};
  const category = p.category ? categoryName(p.category).toLowerCase() : "this kind of";
  switch (error.slug) {
    case "consent-required":
      return `${who} has not authorized ${category} texts, so nothing was sent. Use "Add/Change Texting Authorization" to text them an approval number for ${category}, or ask them to reply Agree to one.`;
    case "opted-out":
      return `${who} replied STOP to texts from ${phoneWords(p.textingNumber) || "the dealership's number"}, so nothing was sent. They can text START to ${phoneWords(p.textingNumber) || "that number"} to get texts again.`;
    case "template-variables":
      return `Some fields need a look: ${p.detail}`;
    case "invalid-code":
      return p.attemptsLeft === undefined
        ? "That approval number is not the one we texted. Check it with the person and try again."
        : `That approval number is not the one we texted. ${p.attemptsLeft} ${p.attemptsLeft === 1 ? "try" : "tries"} left.`;
    case "code-expired":
      return "That approval number has expired or used up its tries. Click Authorize to text a new one.";
    case "no-pending-request":
      return "No approval number is waiting for this category. Click Authorize to text one.";
    case "rate-limited":
      return `Too many approval texts to this number for now. Try again in ${Math.max(1, Math.ceil((p.retryAfter || 60) / 60))} minutes.`;
    case "already-claimed":
      return `${p.claimedBy || "Someone else"} has already claimed this item.`;
    case "unauthorized":
      return "Your session has ended. Open the texting portal from the DMS again.";
    case "forbidden":
      return "Your role does not allow this. Ask a dealer administrator.";
    case "no-texting-number":
      return "The dealership has no texting number yet. Ask a dealer administrator to set one.";
    case "not-found":
      return `Not found: ${p.detail || "it may have been removed"}.`;
    default:
      if (error.status === 401) return "Your session has ended. Open the texting portal from the DMS again.";
      return p.detail || p.title || "Something went wrong; nothing was changed.";
  }
}
