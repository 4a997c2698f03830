// Signing in with the stack's user pool: user name and password to Cognito's InitiateAuth
// (USER_PASSWORD_AUTH with the portal's app client), and a new password when the administrator
// created the user with a temporary one (the NEW_PASSWORD_REQUIRED challenge). The ID token is
// the portal's token: it names the dealer (custom:dealer_id) and the roles (cognito:groups).
import { CLIENT_ID, IDENTITY_ENDPOINT } from "./config.js";
import { h } from "./dom.js";

const SERVICE = "AWSCognitoIdentityProviderService";

class SignInError extends Error {}

async function cognito(action, body) {
  let response;
  try {
    response = await fetch(IDENTITY_ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `${SERVICE}.${action}` },
      body: JSON.stringify(body),
    });
  } catch {
    throw new SignInError("The sign-in service did not answer. Check the connection and try again.");
  }
  const value = await response.json().catch(() => ({}));
  if (!response.ok) {
    const type = String(value.__type || "").split("#").pop();
    if (type === "NotAuthorizedException" || type === "UserNotFoundException") {
      throw new SignInError("The user name or the password is not right.");
    }
    if (type === "InvalidPasswordException") {
      throw new SignInError(`That password is not allowed: ${value.message || "choose a longer one"}.`);
    }
    if (type === "PasswordResetRequiredException") {
      throw new SignInError("Your password must be reset: ask your dealership's administrator.");
    }
    throw new SignInError(value.message || `Signing in failed (HTTP ${response.status}).`);
  }
  return value;
}

/** Resolves to the ID token once staff have signed in (and, if asked, chosen a new password). */
async function signIn(username, password, newPassword) {
  const first = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: CLIENT_ID,
    AuthParameters: { USERNAME: username, PASSWORD: password },
  });
  if (first.AuthenticationResult) return first.AuthenticationResult.IdToken;
  if (first.ChallengeName !== "NEW_PASSWORD_REQUIRED") {
    throw new SignInError(`This sign-in needs a step the portal does not offer (${first.ChallengeName}).`);
  }
  if (!newPassword) return { needsNewPassword: true };
  const second = await cognito("RespondToAuthChallenge", {
    ChallengeName: "NEW_PASSWORD_REQUIRED",
    ClientId: CLIENT_ID,
    Session: first.Session,
    ChallengeResponses: { USERNAME: username, NEW_PASSWORD: newPassword },
  });
  if (!second.AuthenticationResult) throw new SignInError("Signing in did not finish; try again.");
  return second.AuthenticationResult.IdToken;
}

/** The sign-in screen in `main`; calls `done(token)` when signed in. */
export function signInScreen(main, done) {
  const status = h("p", { id: "signin-status", role: "alert" });
  const fresh = h("p", { hidden: true, id: "new-password-row" },
    h("label", { for: "signin-new-password" }, "New password"),
    h("input", { id: "signin-new-password", type: "password", autocomplete: "new-password", minlength: "12" }));
  const form = h("form", { id: "signin-form", class: "signin" },
    h("p", {}, h("label", { for: "signin-user" }, "User name"),
      h("input", { id: "signin-user", autocomplete: "username", required: true })),
    h("p", {}, h("label", { for: "signin-password" }, "Password"),
      h("input", { id: "signin-password", type: "password", autocomplete: "current-password", required: true })),
    fresh,
    h("button", { type: "submit" }, "Sign in"),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    status.textContent = "";
    try {
      const user = form.querySelector("#signin-user").value.trim();
      const password = form.querySelector("#signin-password").value;
      const newPassword = fresh.hidden ? "" : form.querySelector("#signin-new-password").value;
      const result = await signIn(user, password, newPassword);
      if (result && result.needsNewPassword) {
        fresh.hidden = false;
        status.textContent = "Your administrator gave you a temporary password: choose your own to go on.";
        form.querySelector("#signin-new-password").focus();
        return;
      }
      done(result);
    } catch (error) {
      if (!(error instanceof SignInError)) throw error;
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
  main.replaceChildren(h("h2", { id: "screen-title", tabindex: "-1" }, "Sign in"),
    h("p", {}, "Sign in with the user name and password your dealership gave you, or open the portal from the DMS."),
    form);
  form.querySelector("#signin-user").focus();
}
