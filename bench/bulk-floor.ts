/**
 * The floor for the bulk benchmark: the same `$export` of the same sandbox, read by plain code — kick-off,
 * polls honouring Retry-After, each output file streamed with plain fetch, split into lines, each line
 * parsed, rows COPYed into a plain table of the same PostgreSQL. No Temporal, no minimisation, no
 * encryption, no audit. Files are read as many at once as the product reads them, so the two compare.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import type { Pool } from '../lib/store/pool.js';

interface Manifest {
  transactionTime: string;
  requiresAccessToken: boolean;
  output: Array<{ type: string; url: string; count?: number }>;
}

const FLOOR_TABLE =
  'CREATE TABLE IF NOT EXISTS bench_bulk_floor (run int, type text, id text, version text, ' +
  'last_updated timestamptz, body jsonb, PRIMARY KEY (run, type, id))';

/** COPY text format: backslash, tab, newline and carriage return are escaped. */
function copyField(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : value;
}

/** Kick-off and polls, as the IG says: the manifest of a system-level export of `types`. */
export async function plainExport(fhirBaseUrl: string, token: string, types: readonly string[]): Promise<Manifest> {
  const auth = { authorization: `Bearer ${token}` };
  const kickoff = await fetch(`${fhirBaseUrl}/$export?_type=${types.join(',')}`, {
    headers: { ...auth, accept: 'application/fhir+json', prefer: 'respond-async' },
  });
  const status = kickoff.headers.get('content-location');
  await kickoff.arrayBuffer();
  if (kickoff.status !== 202 || !status) throw new Error(`floor kick-off answered ${kickoff.status}`);
  for (;;) {
    const res = await fetch(status, { headers: { ...auth, accept: 'application/json' } });
    if (res.status === 200) return (await res.json()) as Manifest;
    await res.arrayBuffer();
    if (res.status !== 202) throw new Error(`floor status poll answered ${res.status}`);
    const seconds = Number(res.headers.get('retry-after') ?? 1);
    await new Promise((r) => setTimeout(r, Math.max(seconds * 1000, 100)));
  }
}

/** One file: streamed, split into lines, each parsed, COPYed as it arrives. Returns its line count. */
async function copyFile(pool: Pool, run: number, url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { headers: { ...headers, accept: 'application/fhir+ndjson' } });
  if (res.status !== 200 || !res.body) throw new Error(`floor download answered ${res.status}`);
  const body = res.body;
  let count = 0;
  async function* rows(): AsyncGenerator<string> {
    let carry = '';
    const decoder = new TextDecoder();
    for await (const chunk of body) {
      const text = carry + decoder.decode(chunk, { stream: true });
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      let out = '';
      for (const line of lines) {
        if (line.length === 0) continue;
        const r = JSON.parse(line) as {
          resourceType: string;
          id: string;
          meta: { versionId: string; lastUpdated: string };
        };
        out += `${run}\t${r.resourceType}\t${r.id}\t${r.meta.versionId}\t${r.meta.lastUpdated}\t${copyField(line)}\n`;
        count++;
      }
      if (out) yield out;
    }
    if (carry.length > 0) throw new Error('floor: the file did not end with a newline');
  }
  const client = await pool.connect();
  try {
    const copy = client.query(
      copyFrom('COPY bench_bulk_floor (run, type, id, version, last_updated, body) FROM STDIN'),
    );
    await pipeline(Readable.from(rows()), copy);
  } finally {
    client.release();
  }
  return count;
}

/**
 * One floor run: export, then every output file through COPY, `concurrency` files at once. Resources/s
 * from the kick-off to the last file committed (each COPY commits on its own).
 */
export async function bulkFloorRun(
  pool: Pool,
  opts: {
    fhirBaseUrl: string;
    token: string;
    types: readonly string[];
    run: number;
    concurrency: number;
    expected: number;
  },
): Promise<number> {
  await pool.query(FLOOR_TABLE);
  const started = performance.now();
  const manifest = await plainExport(opts.fhirBaseUrl, opts.token, opts.types);
  const headers: Record<string, string> = manifest.requiresAccessToken ? { authorization: `Bearer ${opts.token}` } : {};
  const queue = [...manifest.output];
  let count = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      for (let file = queue.shift(); file; file = queue.shift()) {
        const copied = await copyFile(pool, opts.run, file.url, headers);
        count += copied;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (count !== opts.expected) throw new Error(`floor copied ${count}, expected ${opts.expected}`);
  // The next run's COPY should not pay for this one's rows.
  await pool.query('TRUNCATE bench_bulk_floor');
  return count / seconds;
}
