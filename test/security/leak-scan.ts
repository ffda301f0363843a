/**
 * Leak scanning (DESIGN §4 invariants 1 and 11): turn workflow histories, logs and error outputs
 * into searchable text (payloads decoded — through the payload codec when one is given — and any
 * base64 inside decoded) and search it for the sandbox's synthetic identifying strings and for
 * secret material. A hit is reported by WHERE and WHAT KIND, never by the matched text, so the
 * report itself cannot leak.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { PayloadCodec } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
type Payload = temporal.api.common.v1.IPayload;

export type LeakKind =
  | 'synthetic-identifier'
  | 'private-key-pem'
  | 'private-key-material'
  | 'kek-material'
  | 'access-token'
  | 'undecodable-payload'
  /** A registered Temporal server that was neither reachable at the end of the run nor preserved before it stopped. */
  | 'unscanned-temporal-server';

export interface LeakHit {
  /** `workflow <id> run <runId>`, or a file path. */
  source: string;
  kind: LeakKind;
  /** How many distinct needles of this kind were found there. */
  count: number;
}

export interface LeakNeedles {
  /** Synthetic identifying strings (names, MRNs, phones, addresses); those under 6 characters are ignored. */
  identifiers: readonly string[];
  /** Exact secret strings (key file contents, PEM bodies) with their kind. */
  secrets: ReadonlyArray<{ kind: LeakKind; value: string }>;
  /** Also flag JWT-shaped strings (access tokens, client assertions). Default true. */
  jwts?: boolean;
}

const PEM_PRIVATE = /-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----/;
const JWT = /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,}/;
const BASE64_TOKEN = /[A-Za-z0-9+/_-]{24,}={0,2}/g;

/**
 * Substring search for many needles at once: needles are bucketed by their first 6 characters, so
 * the text is walked once instead of once per needle.
 */
class NeedleSet {
  readonly #buckets = new Map<string, string[]>();
  constructor(needles: Iterable<string>) {
    for (const n of new Set(needles)) {
      if (n.length < 6) continue;
      const key = n.slice(0, 6);
      const bucket = this.#buckets.get(key);
      if (bucket) bucket.push(n);
      else this.#buckets.set(key, [n]);
    }
  }
  get size(): number {
    let n = 0;
    for (const b of this.#buckets.values()) n += b.length;
    return n;
  }
  /** The distinct needles present in `text`. */
  find(text: string): Set<string> {
    const found = new Set<string>();
    if (this.#buckets.size === 0) return found;
    for (let i = 0; i + 6 <= text.length; i++) {
      const bucket = this.#buckets.get(text.slice(i, i + 6));
      if (!bucket) continue;
      for (const n of bucket) if (!found.has(n) && text.startsWith(n, i)) found.add(n);
    }
    return found;
  }
}

/** A compiled scanner: build once per run, apply to many texts. */
export class LeakScanner {
  readonly #identifiers: NeedleSet;
  readonly #secrets: Map<LeakKind, NeedleSet>;
  readonly #jwts: boolean;

  constructor(needles: LeakNeedles) {
    this.#identifiers = new NeedleSet(needles.identifiers);
    const byKind = new Map<LeakKind, string[]>();
    for (const s of needles.secrets) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s.value]);
    this.#secrets = new Map([...byKind].map(([kind, values]) => [kind, new NeedleSet(values)]));
    this.#jwts = needles.jwts ?? true;
  }

  get identifierCount(): number {
    return this.#identifiers.size;
  }

  scan(source: string, text: string): LeakHit[] {
    const hits: LeakHit[] = [];
    const ids = this.#identifiers.find(text);
    if (ids.size > 0) hits.push({ source, kind: 'synthetic-identifier', count: ids.size });
    if (PEM_PRIVATE.test(text)) hits.push({ source, kind: 'private-key-pem', count: 1 });
    for (const [kind, set] of this.#secrets) {
      const found = set.find(text);
      if (found.size > 0) hits.push({ source, kind, count: found.size });
    }
    if (this.#jwts && JWT.test(text)) hits.push({ source, kind: 'access-token', count: 1 });
    return hits;
  }
}

/** Every base64 run in `text` (≥ 24 characters) decoded as UTF-8, for a second look. */
export function decodedBase64Runs(text: string): string {
  const out: string[] = [];
  for (const m of text.matchAll(BASE64_TOKEN)) {
    const decoded = Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    // Keep only runs that decode to mostly printable text: anything else is binary (ciphertext, keys).
    const printable = decoded.replace(/[^\x20-\x7e\n\r\t]/g, '');
    if (printable.length >= decoded.length * 0.9) out.push(decoded);
  }
  return out.join('\n');
}

function collectPayloads(value: unknown, out: Payload[], seen = new Set<object>()): void {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || seen.has(value)) return;
  seen.add(value);
  const record = value as Record<string, unknown>;
  if (record.data instanceof Uint8Array && record.metadata !== null && typeof record.metadata === 'object') {
    out.push(record as Payload);
    return;
  }
  for (const child of Object.values(record)) collectPayloads(child, out, seen);
}

function utf8(bytes: Uint8Array | null | undefined): string {
  return bytes ? Buffer.from(bytes).toString('utf8') : '';
}

const ENCRYPTED_ENCODINGS = new Set(['binary/encrypted']);

/**
 * The history as JSON, plus every payload's data as text — through `codec.decode` when a codec is
 * given — plus every base64 run in all of that decoded. `undecodable` counts encrypted payloads
 * that could not be decoded (no codec, or the codec failed): those were not really scanned.
 */
export async function historyTextDecoded(
  history: History,
  codec?: PayloadCodec,
): Promise<{ text: string; undecodable: number }> {
  const payloads: Payload[] = [];
  collectPayloads(history, payloads);
  const parts: string[] = [historyToJSON(history as temporal.api.history.v1.History)];
  let undecodable = 0;
  for (const payload of payloads) {
    let decoded: Payload = payload;
    if (codec) {
      try {
        decoded = (await codec.decode([payload]))[0] ?? payload;
      } catch {
        undecodable += 1;
        continue;
      }
    }
    if (ENCRYPTED_ENCODINGS.has(utf8(decoded.metadata?.encoding))) {
      undecodable += 1;
      continue;
    }
    parts.push(utf8(decoded.data));
  }
  const joined = parts.join('\n');
  return { text: `${joined}\n${decodedBase64Runs(joined)}`, undecodable };
}

/** The history as JSON plus every payload's data decoded from base64, so encoded PHI is visible. */
export function historyText(history: History): string {
  const decoded: string[] = [];
  const visit = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    if (value instanceof Uint8Array) {
      decoded.push(Buffer.from(value).toString('utf8'));
      return;
    }
    for (const child of Object.values(value as Record<string, unknown>)) visit(child);
  };
  visit(history);
  return `${JSON.stringify(history)}\n${decoded.join('\n')}`;
}

export function findLeaks(text: string, identifiers: readonly string[]): string[] {
  return identifiers.filter((s) => s.length >= 6 && text.includes(s));
}

/** Scans one history: a hit per kind found, plus `undecodable-payload` when payloads could not be read. */
export async function scanHistory(
  scanner: LeakScanner,
  source: string,
  history: History,
  codec?: PayloadCodec,
): Promise<LeakHit[]> {
  const { text, undecodable } = await historyTextDecoded(history, codec);
  const hits = scanner.scan(source, text);
  if (undecodable > 0) hits.push({ source, kind: 'undecodable-payload', count: undecodable });
  return hits;
}

/** Scans files (as text, plus decoded base64 runs). Missing files are skipped. */
export function scanFiles(scanner: LeakScanner, files: readonly string[]): LeakHit[] {
  const hits: LeakHit[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    hits.push(...scanner.scan(file, `${text}\n${decodedBase64Runs(text)}`));
  }
  return hits;
}

/** Regular files under `dir`, recursively (none when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/**
 * Secret material a test run must never emit: every key file's contents in the KEK directory (as
 * stored, plus hex and base64url of the decoded key), and the body of every PEM private key in the
 * secrets directory. Values are never printed.
 */
export function secretNeedles(dirs: {
  kekDir?: string;
  secretsDir?: string;
}): Array<{ kind: LeakKind; value: string }> {
  const needles: Array<{ kind: LeakKind; value: string }> = [];
  for (const file of dirs.kekDir ? filesUnder(dirs.kekDir) : []) {
    const text = safeRead(file).trim();
    if (text.length < 16) continue;
    needles.push({ kind: 'kek-material', value: text });
    if (/^[A-Za-z0-9+/]+=*$/.test(text)) {
      const raw = Buffer.from(text, 'base64');
      if (raw.length >= 16)
        needles.push(
          { kind: 'kek-material', value: raw.toString('hex') },
          { kind: 'kek-material', value: raw.toString('base64url') },
        );
    }
  }
  for (const file of dirs.secretsDir ? filesUnder(dirs.secretsDir) : []) {
    const text = safeRead(file);
    for (const m of text.matchAll(/-----BEGIN [A-Z ]*PRIVATE KEY-----([\s\S]*?)-----END/g)) {
      // A 48-character slice of the body from each line: found even when the PEM is re-wrapped or escaped.
      const body = m[1]!.replace(/\s+/g, '');
      for (let i = 0; i + 48 <= body.length; i += 256)
        needles.push({ kind: 'private-key-material', value: body.slice(i, i + 48) });
    }
  }
  return needles;
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** One line per hit, naming where and what kind — never the text found. */
export function describeHits(hits: readonly LeakHit[]): string {
  return hits.map((h) => `  ${h.kind} ×${h.count} in ${h.source}`).join('\n');
}
