/**
 * Which Content-Type a webhook delivery may carry. Standard Webhooks senders post `application/json`;
 * FHIR subscription notifications `application/fhir+json` (or the older `application/json+fhir`). A
 * charset, when given, must be UTF-8 (the notification parser reads UTF-8); other parameters such as
 * FHIR's `fhirVersion` are allowed. Anything else — absent, malformed (RFC 9110 §8.3.1) or another type —
 * is refused with 415 before the body is read: it is the sender's mistake, and a retry will not fix it.
 */
export type ContentTypeRefusal = 'missing-content-type' | 'malformed-content-type' | 'unsupported-content-type';
export type ContentTypeVerdict = { ok: true } | { ok: false; reason: ContentTypeRefusal };

const SUPPORTED = new Set(['application/json', 'application/fhir+json', 'application/json+fhir']);
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x21-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*)$`);
const PARAMETER = new RegExp(`(${TOKEN})=(${TOKEN}|${QUOTED})`, 'g');
const MAX_LENGTH = 256;

export function checkWebhookContentType(header: string | string[] | undefined): ContentTypeVerdict {
  if (header === undefined) return { ok: false, reason: 'missing-content-type' };
  if (Array.isArray(header) || header.length > MAX_LENGTH) return { ok: false, reason: 'malformed-content-type' };
  const value = header.trim();
  if (value === '') return { ok: false, reason: 'missing-content-type' };
  const m = MEDIA_TYPE.exec(value);
  if (!m) return { ok: false, reason: 'malformed-content-type' };
  if (!SUPPORTED.has(`${m[1]}/${m[2]}`.toLowerCase())) return { ok: false, reason: 'unsupported-content-type' };
  for (const [, name, raw] of m[3]!.matchAll(PARAMETER)) {
    if (name!.toLowerCase() !== 'charset') continue;
    const charset = raw!.startsWith('"') ? raw!.slice(1, -1) : raw!;
    if (!/^utf-?8$/i.test(charset)) return { ok: false, reason: 'unsupported-content-type' };
  }
  return { ok: true };
}
