// The portal's settings: where the texting API answers, and the identity provider staff sign in
// with (the stack's Cognito user pool: its regional endpoint and the portal's app client, the
// UserPoolClientId output). `make dev` serves this file with its own stack's values.
export const API_BASE = "http://127.0.0.1:3000";
export const IDENTITY_ENDPOINT = "https://cognito-idp.us-east-1.amazonaws.com/";
export const CLIENT_ID = "";
// The token claim that names the staff user (the stack's UserClaim; a user pool's cognito:username).
export const USER_CLAIM = "cognito:username";
