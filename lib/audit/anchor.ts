/**
 * The audit anchor: a JSON-lines file outside the database, one line per signed checkpoint
 * (DESIGN §6 "Audit anchors"). Appends are fsynced; the file and its directory are private (0600 /
 * 0700). Each line carries the compact JWS (the authority) and the signing public JWK, so a verifier
 * does not have to trust the database for either.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { JWK } from 'jose';

export interface AnchorLine {
  v: 1;
  chainId: string;
  checkpointSeq: number;
  eventSeq: number;
  headHash: string;
  kid: string;
  jws: string;
  publicJwk: JWK;
}

/** A line as read back: parsed, or the reason it could not be. `line` is 1-based. */
export type ReadAnchorLine = { line: number; entry: AnchorLine } | { line: number; error: string };

/** Where checkpoints are copied. The file implementation is the default; others (WORM bucket) can follow. */
export interface AuditAnchor {
  readonly description: string;
  append(line: AnchorLine): Promise<void>;
  /** Every line, or undefined when the anchor does not exist yet. */
  readAll(): Promise<ReadAnchorLine[] | undefined>;
  /** The last well-formed line, cheaply (without reading the whole anchor). */
  last(): Promise<AnchorLine | undefined>;
}

function parseLine(text: string, line: number): ReadAnchorLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { line, error: 'not JSON' };
  }
  const v = value as Partial<AnchorLine> | null;
  if (
    !v ||
    typeof v !== 'object' ||
    v.v !== 1 ||
    typeof v.chainId !== 'string' ||
    !Number.isSafeInteger(v.checkpointSeq) ||
    !Number.isSafeInteger(v.eventSeq) ||
    typeof v.headHash !== 'string' ||
    typeof v.kid !== 'string' ||
    typeof v.jws !== 'string' ||
    typeof v.publicJwk !== 'object' ||
    v.publicJwk === null
  ) {
    return { line, error: 'not a checkpoint line' };
  }
  return { line, entry: v as AnchorLine };
}

export class FileAuditAnchor implements AuditAnchor {
  readonly path: string;

  constructor(anchorPath: string) {
    this.path = path.resolve(anchorPath);
  }

  get description(): string {
    return this.path;
  }

  async append(line: AnchorLine): Promise<void> {
    const dir = path.dirname(this.path);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    let created = false;
    try {
      await fs.access(this.path);
    } catch {
      created = true;
    }
    const fh = await fs.open(this.path, 'a', 0o600);
    try {
      await fh.chmod(0o600);
      await fh.appendFile(`${JSON.stringify(line)}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (created) {
      // Make the new directory entry durable too.
      const dh = await fs.open(dir, 'r').catch(() => undefined);
      if (dh)
        await dh
          .sync()
          .catch(() => undefined)
          .finally(() => dh.close());
    }
  }

  async readAll(): Promise<ReadAnchorLine[] | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const out: ReadAnchorLine[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const t = lines[i]!;
      if (t.trim() === '' && i === lines.length - 1) continue; // the final newline
      out.push(t.trim() === '' ? { line: i + 1, error: 'empty line' } : parseLine(t, i + 1));
    }
    return out;
  }

  async last(): Promise<AnchorLine | undefined> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await fh.stat();
      let chunk = 64 * 1024;
      for (;;) {
        const start = Math.max(0, size - chunk);
        const buf = Buffer.alloc(size - start);
        await fh.read(buf, 0, buf.length, start);
        const lines = buf
          .toString('utf8')
          .split('\n')
          .filter((l) => l.trim() !== '');
        // The first line of a partial chunk may be cut; it is only usable when the chunk starts the file.
        const usable = start === 0 ? lines : lines.slice(1);
        const lastText = usable[usable.length - 1];
        if (lastText !== undefined) {
          const parsed = parseLine(lastText, 0);
          if ('error' in parsed) throw new Error(`audit anchor ${this.path}: the last line is ${parsed.error}`);
          return parsed.entry;
        }
        if (start === 0) return undefined;
        chunk *= 4;
      }
    } finally {
      await fh.close();
    }
  }
}
