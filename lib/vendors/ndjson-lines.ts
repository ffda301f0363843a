/**
 * Splits a streamed NDJSON body into lines without ever holding more than one line (plus one chunk) in
 * memory. Our own splitter rather than node:readline: readline buffers a line whole before handing it
 * over, so a vendor line of a gigabyte would be held whole; here a line longer than the cap is dropped
 * as it streams and reported as oversize, and the rest of the file goes on. Splitting on the byte 0x0A is
 * exact for UTF-8 (no multi-byte sequence contains it), so a chunk boundary inside a character is harmless.
 */

export type NdjsonLine =
  /**
   * `number` is 1-based and counts every line of the file, blank ones included. `bytes` are the line's own bytes
   * (`text` is them decoded): a view of the stream's chunk, valid only until the next line is asked for.
   */
  | { number: number; text: string; bytes: Buffer; oversize?: undefined }
  | { number: number; text?: undefined; bytes?: undefined; oversize: true };

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export async function* ndjsonLines(
  chunks: AsyncIterable<Uint8Array>,
  maxLineBytes: number,
): AsyncGenerator<NdjsonLine, void, undefined> {
  let parts: Buffer[] = [];
  let length = 0;
  let oversize = false;
  let number = 0;

  const take = (tail: Buffer): NdjsonLine => {
    number += 1;
    if (oversize || length + tail.byteLength > maxLineBytes) {
      parts = [];
      length = 0;
      oversize = false;
      return { number, oversize: true };
    }
    let line = parts.length === 0 ? tail : Buffer.concat([...parts, tail], length + tail.byteLength);
    if (line.byteLength > 0 && line[line.byteLength - 1] === CARRIAGE_RETURN) line = line.subarray(0, -1);
    parts = [];
    length = 0;
    return { number, text: line.toString('utf8'), bytes: line };
  };

  for await (const chunk of chunks) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(NEWLINE, start); nl !== -1; nl = buf.indexOf(NEWLINE, start)) {
      yield take(buf.subarray(start, nl));
      start = nl + 1;
    }
    const rest = buf.subarray(start);
    if (rest.byteLength === 0) continue;
    if (oversize || length + rest.byteLength > maxLineBytes) {
      // Past the cap: drop what we have and the rest of this line as it arrives.
      oversize = true;
      parts = [];
      length = 0;
    } else {
      // Copy: the chunk's memory may be reused by the stream once we ask for the next one.
      parts.push(Buffer.from(rest));
      length += rest.byteLength;
    }
  }
  if (oversize || length > 0) yield take(Buffer.alloc(0));
}
