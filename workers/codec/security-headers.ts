/**
 * Headers on every codec-server answer (decoded payloads, refusals, preflights, errors alike). The
 * server answers only JSON to scripts, so each header shuts a door a browser would otherwise open:
 *  - Strict-Transport-Security: the codec server is HTTPS only; a browser that saw it once never sends
 *    a token or session cookie to it in clear. Not sent for `localhost` names: HSTS binds the whole
 *    host (every port), and would turn the dev Web UI at http://localhost:8233 into https. IP literals
 *    (the dev stack's 127.0.0.1) are ignored by browsers (RFC 6797 §8.1), so sending it there is harmless.
 *  - Cache-Control: no-store (+ Pragma for HTTP/1.0 proxies): decoded payloads carry PHI and must not
 *    sit in a browser or proxy cache; nothing this server says is worth caching.
 *  - X-Content-Type-Options: nosniff: a JSON answer is never run as script or rendered as HTML.
 *  - Content-Security-Policy / X-Frame-Options / Referrer-Policy: if an answer is ever opened as a
 *    document, it loads nothing, cannot be framed, and leaks no URL onwards.
 *  - Cross-Origin-Resource-Policy: same-origin: another site cannot embed an answer with a no-cors
 *    request (e.g. <script src>); the Web UI's fetch is a CORS request, which CORP does not block.
 */
export const HSTS = 'max-age=63072000; includeSubDomains';

const ALWAYS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
};

function isLocalhostName(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const name = hostHeader.replace(/:\d+$/, '').toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost');
}

/** The security headers for one answer of the TLS listener, given the request's Host header. */
export function securityHeaders(hostHeader: string | undefined): Record<string, string> {
  return isLocalhostName(hostHeader) ? { ...ALWAYS } : { ...ALWAYS, 'strict-transport-security': HSTS };
}
