// The portal's one setting: where the texting API answers. `make dev` serves this file with its
// gateway's address; a deployment serves it with the API's address.
export const API_BASE = "http://127.0.0.1:3000";
