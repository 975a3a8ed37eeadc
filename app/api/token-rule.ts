/**
 * What an operator API token must be, checked where it is configured (the config schema) and where it is stored (the
 * token file). Visible ASCII only: a token is sent in an HTTP header, where Node refuses control characters and a
 * browser anything beyond Latin-1, and curl's UTF-8 bytes are read back as Latin-1, so any other token would lock its
 * operator out of the API, /metrics and the dashboard.
 */

/** Shortest token accepted: shorter ones are guessable. */
export const MIN_API_TOKEN_LENGTH = 16;

/** The rule as error messages state it: `http.apiToken must be ${API_TOKEN_RULE}`. */
export const API_TOKEN_RULE = `at least ${MIN_API_TOKEN_LENGTH} visible ASCII characters (no spaces)`;

/** True when `token` can be an operator token. */
export function isValidApiToken(token: string): boolean {
  return token.length >= MIN_API_TOKEN_LENGTH && /^[\x21-\x7e]+$/.test(token);
}
