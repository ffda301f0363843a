/** The remote codec protocol's JSON form of payloads. */
import type { Payload } from '@temporalio/common';

export interface WirePayload {
  metadata?: Record<string, string>;
  data?: string;
}

const B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const MAX_PAYLOADS = 10_000;

function b64(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !B64.test(value)) throw new Error(`${what} must be base64`);
  return Buffer.from(value, 'base64');
}

/** `{ payloads: [...] }` → Payloads; throws Error with a reason (no content) when malformed. */
export function fromWire(body: unknown): Payload[] {
  const payloads = (body as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(payloads)) throw new Error('body must be {"payloads": [...]}');
  if (payloads.length > MAX_PAYLOADS) throw new Error(`at most ${MAX_PAYLOADS} payloads per request`);
  return payloads.map((p: unknown, i) => {
    if (p === null || typeof p !== 'object') throw new Error(`payloads[${i}] must be an object`);
    const { metadata, data } = p as { metadata?: unknown; data?: unknown };
    const meta: Record<string, Uint8Array> = {};
    if (metadata !== undefined && metadata !== null) {
      if (typeof metadata !== 'object') throw new Error(`payloads[${i}].metadata must be an object`);
      for (const [k, v] of Object.entries(metadata)) meta[k] = b64(v, `payloads[${i}].metadata.${k.slice(0, 40)}`);
    }
    return {
      metadata: meta,
      data: data === undefined || data === null ? new Uint8Array() : b64(data, `payloads[${i}].data`),
    };
  });
}

export function toWire(payloads: Payload[]): { payloads: WirePayload[] } {
  return {
    payloads: payloads.map((p) => ({
      metadata: Object.fromEntries(
        Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')]),
      ),
      data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
    })),
  };
}
