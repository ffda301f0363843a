/**
 * A streamed response body (Bulk Data files): no size cap — a file can be gigabytes — but an idle
 * timeout that runs only while we wait for the vendor (headers, then each chunk), never while the
 * consumer is busy storing a batch, so a slow database does not time out a healthy download.
 */
import { VendorNetworkError } from '../errors/index.js';
import { networkReason } from './vendor-answers.js';

export class IdleTimeout {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  readonly signal = this.controller.signal;

  constructor(private readonly ms: number) {}

  arm(): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.controller.abort(new DOMException(`no data for ${this.ms} ms`, 'TimeoutError'));
    }, this.ms);
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The body's chunks, counting bytes into `counter`, with the idle timeout armed around each read. A failed
 * read is the vendor's network failing (retryable), told apart from the consumer's own failures.
 */
export async function* bodyChunks(
  body: ReadableStream<Uint8Array> | null,
  idle: IdleTimeout,
  counter: { bytes: number },
  path: string,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  const reader = body.getReader();
  try {
    for (;;) {
      idle.arm();
      const { done, value } = await reader
        .read()
        .catch((err: unknown) => {
          throw new VendorNetworkError('GET', path, networkReason(err));
        })
        .finally(() => idle.disarm());
      if (done) return;
      counter.bytes += value.byteLength;
      yield value;
    }
  } finally {
    // An early stop (a refused line, a cancelled activity) closes the connection instead of draining it.
    await reader.cancel().catch(() => undefined);
  }
}
