/**
 * Transport rules every vendor call obeys (DESIGN §4 invariant 5): TLS except loopback, a size cap
 * on every response, Retry-After honoured, status codes classified into retry classes.
 */
import { ResponseTooLargeError, TlsPolicyError, VendorHttpError } from '../errors/index.js';

/** RFC 9110 IMF-fixdate, e.g. `Wed, 21 Oct 2015 07:28:00 GMT`. */
const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function isLoopback(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
}

/** Plain http is refused unless the peer is on loopback (the sandbox); no other schemes at all. */
export function assertTransportAllowed(url: URL): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && isLoopback(url)) return;
  throw new TlsPolicyError(url.host);
}

/** Retry-After as delta-seconds or an HTTP date; capped at 10 minutes so a hostile value cannot park us. */
export function parseRetryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  let ms: number;
  if (/^\d+$/.test(value)) ms = Number(value) * 1000;
  else if (HTTP_DATE.test(value)) ms = Date.parse(value) - now;
  else return undefined; // not delta-seconds, not an HTTP-date: no hint
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(ms, 0), 600_000);
}

/** Reads a response body without ever holding more than `limitBytes`. */
export async function readBodyCapped(res: Response, limitBytes: number, path: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new ResponseTooLargeError(path, limitBytes);
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(path, limitBytes);
    }
    chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }
  return Buffer.concat(chunks, total);
}

export function errorForStatus(res: Response, method: string, path: string, outcomeCode?: string): VendorHttpError {
  return new VendorHttpError(res.status, method, path, parseRetryAfterMs(res.headers.get('retry-after')), outcomeCode);
}

/** The path of a URL for messages and audit rows: never the query string (it can carry search values). */
export function safePath(url: URL): string {
  return url.pathname;
}
