/**
 * The end-of-run leak scanner (test/leak-scan-setup.ts) can fail: leaks planted in a fixture
 * history, a log file and an error output are each found — exactly those, by place and kind, and
 * the report never repeats the leaked text. Encrypted payloads are scanned through the codec, and
 * without one they are reported rather than silently skipped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PayloadCodec } from '@temporalio/common';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { temporal } from '@temporalio/proto';
import { startSandbox } from '../../sandbox/index.js';
import {
  LEAK_REGISTRY_ENV,
  initLeakRegistry,
  leakLogDir,
  leakRegistryDir,
  markTemporalServerPreserved,
  preservedHistoryDir,
  readLeakRegistry,
  recordErrorOutput,
  recordIdentifiers,
  recordSandboxIdentifiers,
  registerTemporalServer,
} from './leak-registry.js';
import { describeHits } from './leak-scan.js';
import { leakScanProblem, runLeakScan } from './leak-scan-run.js';
import { randomFreePort } from '../../dev/ports.js';

type History = temporal.api.history.v1.IHistory;

// Synthetic strings only.
const PLANTED = `Zyxplantova-${randomBytes(4).toString('hex')}`;
const ABSENT = ['SYN-MRN-99999999', 'Neverseenname', '555-0199-0000'];
const fixture = path.join(__dirname, '../replay/histories/full-sync.json');

let tmp: string;
let registry: string;

function freshRegistry(name: string): string {
  const dir = initLeakRegistry(path.join(tmp, name));
  recordIdentifiers([PLANTED, ...ABSENT], dir);
  return dir;
}

function loadFixture(): History {
  return historyFromJSON(JSON.parse(fs.readFileSync(fixture, 'utf8')));
}

/** The fixture with `text` planted inside the workflow input payload (as a PHI-carrying input would be). */
function plantedHistory(
  text: string,
  transform: (data: Uint8Array) => { data: Uint8Array; encoding?: string } = (d) => ({ data: d }),
): History {
  const history = loadFixture();
  const payload = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  const input = JSON.parse(Buffer.from(payload.data!).toString('utf8')) as Record<string, unknown>;
  const planted = transform(Buffer.from(JSON.stringify({ ...input, patientName: text }), 'utf8'));
  payload.data = planted.data;
  if (planted.encoding) payload.metadata = { ...payload.metadata, encoding: Buffer.from(planted.encoding) };
  return history;
}

/** A stand-in encrypting codec: XOR with a byte, `binary/encrypted` encoding, like the real codec's metadata. */
const XOR = 0x5a;
const xor = (d: Uint8Array) => Uint8Array.from(d, (b) => b ^ XOR);
const fakeCodec: PayloadCodec = {
  encode: async (payloads) => payloads,
  decode: async (payloads) =>
    payloads.map((p) =>
      Buffer.from(p.metadata?.encoding ?? []).toString() === 'binary/encrypted'
        ? { metadata: { encoding: Buffer.from('json/plain') }, data: xor(p.data!) }
        : p,
    ),
};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'leak-scanner-test-'));
  registry = freshRegistry('run');
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('leak scanner', () => {
  it('finds nothing in a clean recorded history, while looking for real identifiers', async () => {
    const report = await runLeakScan({
      registryDir: registry,
      histories: [{ source: 'fixture full-sync', history: loadFixture() }],
    });
    expect(report.identifiers).toBe(1 + ABSENT.length);
    expect(report.workflows).toBe(1);
    expect(report.hits).toEqual([]);
  });

  it('finds an identifier planted in a history payload, and reports where and what kind but not the text', async () => {
    const report = await runLeakScan({
      registryDir: registry,
      histories: [{ source: 'fixture planted', history: plantedHistory(PLANTED) }],
    });
    expect(report.hits).toEqual([{ source: 'fixture planted', kind: 'synthetic-identifier', count: 1 }]);
    const message = describeHits(report.hits);
    expect(message).toContain('synthetic-identifier');
    expect(message).toContain('fixture planted');
    expect(message).not.toContain(PLANTED);
  });

  it('finds an identifier that is base64-encoded inside a log line', async () => {
    const dir = freshRegistry('log');
    const log = path.join(dir, 'logs', 'worker.ndjson');
    const planted = { level: 30, blob: Buffer.from(`x ${PLANTED} y`).toString('base64') };
    fs.writeFileSync(
      log,
      `${JSON.stringify({ level: 30, msg: 'page stored', count: 50 })}\n${JSON.stringify(planted)}\n`,
    );
    const report = await runLeakScan({ registryDir: dir });
    expect(report.hits).toEqual([{ source: log, kind: 'synthetic-identifier', count: 1 }]);
  });

  it('finds secret material in error outputs: a PEM private key, and the test KEK', async () => {
    const dir = freshRegistry('errors');
    const kekDir = path.join(tmp, 'keys');
    fs.mkdirSync(kekDir, { mode: 0o700 });
    const kek = randomBytes(32).toString('base64');
    fs.writeFileSync(path.join(kekDir, 'kek-v1.key'), `${kek}\n`, { mode: 0o600 });
    fs.writeFileSync(
      path.join(dir, 'errors', 'cli-stderr.txt'),
      'error: could not parse\n-----BEGIN PRIVATE KEY-----\nMIIsynthetic\n',
    );
    fs.writeFileSync(
      path.join(dir, 'errors', 'dump.txt'),
      `config dump: kek=${Buffer.from(kek, 'base64').toString('hex')}\n`,
    );
    fs.writeFileSync(path.join(dir, 'errors', 'clean.txt'), 'configuration DATABASE_URL: is required but not set\n');
    const report = await runLeakScan({ registryDir: dir, kekDir });
    expect(report.hits).toEqual([
      { source: path.join(dir, 'errors', 'cli-stderr.txt'), kind: 'private-key-pem', count: 1 },
      { source: path.join(dir, 'errors', 'dump.txt'), kind: 'kek-material', count: 1 },
    ]);
    expect(describeHits(report.hits)).not.toContain(kek);
  });

  it('scans encrypted payloads through the codec, and reports them as unscanned without one', async () => {
    const history = plantedHistory(PLANTED, (d) => ({ data: xor(d), encoding: 'binary/encrypted' }));
    const withoutCodec = await runLeakScan({ registryDir: registry, histories: [{ source: 'encrypted', history }] });
    expect(withoutCodec.hits).toEqual([{ source: 'encrypted', kind: 'undecodable-payload', count: 1 }]);
    const withCodec = await runLeakScan({
      registryDir: registry,
      histories: [{ source: 'encrypted', history }],
      codec: fakeCodec,
    });
    expect(withCodec.hits).toEqual([{ source: 'encrypted', kind: 'synthetic-identifier', count: 1 }]);
  });
});

describe('leak registry', () => {
  it('is active in every test process: the global setup exported its directory before workers started', () => {
    const dir = leakRegistryDir();
    expect(dir, LEAK_REGISTRY_ENV).toBeDefined();
    expect(fs.statSync(dir!).isDirectory()).toBe(true);
    expect(leakLogDir()).toBe(path.join(dir!, 'logs'));
  });

  it("records a sandbox's synthetic identifiers from /admin/identifiers", async () => {
    const dir = freshRegistry('sandbox');
    const sandbox = await startSandbox({ seed: 5, size: 50 });
    const previous = process.env[LEAK_REGISTRY_ENV];
    process.env[LEAK_REGISTRY_ENV] = dir;
    try {
      const recorded = await recordSandboxIdentifiers(sandbox);
      expect(recorded).toBeGreaterThan(10);
      expect(readLeakRegistry(dir).identifiers.length).toBe(recorded + 1 + ABSENT.length);
      // A resource the sandbox serves carries one of them: the scanner would find it in a log.
      const patients = (await (
        await fetch(`${sandbox.url}/admin/manifest?type=Patient`, {
          headers: { 'x-sandbox-admin': sandbox.adminToken },
        })
      ).json()) as {
        records: Array<{ id: string }>;
      };
      const res = await fetch(`${sandbox.url}/admin/resource/Patient/${patients.records[0]!.id}`, {
        headers: { 'x-sandbox-admin': sandbox.adminToken },
      });
      fs.writeFileSync(path.join(dir, 'logs', 'leaky.ndjson'), await res.text());
      const report = await runLeakScan({ registryDir: dir });
      expect(report.hits.map((h) => h.kind)).toEqual(['synthetic-identifier']);
    } finally {
      if (previous === undefined) delete process.env[LEAK_REGISTRY_ENV];
      else process.env[LEAK_REGISTRY_ENV] = previous;
      await sandbox.close();
    }
  });
});

describe('every Temporal server of the run is scanned', () => {
  it('a registered server that is gone and was not preserved fails the scan; preserved histories are scanned', async () => {
    const dir = freshRegistry('servers');
    const gone = `127.0.0.1:${await randomFreePort()}`;
    registerTemporalServer({ label: 'forgotten', address: gone, namespace: 'default' }, dir);
    const unscanned = await runLeakScan({ registryDir: dir });
    expect(unscanned.hits).toEqual([
      { source: `temporal server forgotten at ${gone}`, kind: 'unscanned-temporal-server', count: 1 },
    ]);
    expect(leakScanProblem(unscanned)).toMatch(/found 1 problem/);

    const preservedDir = freshRegistry('preserved');
    const id = registerTemporalServer({ label: 'ui', address: gone, namespace: 'default' }, preservedDir)!;
    const history = JSON.parse(historyToJSON(plantedHistory(PLANTED) as temporal.api.history.v1.History)) as unknown;
    fs.writeFileSync(
      path.join(preservedHistoryDir(id, preservedDir), '1.json'),
      JSON.stringify({ workflowId: 'wf-ui', runId: 'r1', history }),
    );
    markTemporalServerPreserved(id, preservedDir);
    const report = await runLeakScan({ registryDir: preservedDir });
    expect(report.temporalServers).toBe(1);
    expect(report.workflows).toBe(1);
    expect(report.hits).toEqual([
      {
        source: expect.stringMatching(/^workflow wf-ui run r1 \(preserved in /),
        kind: 'synthetic-identifier',
        count: 1,
      },
    ]);
  });

  it('histories scanned with no identifier registered fail the run: the scan looked for nothing', () => {
    const clean = { hits: [], workflows: 3, files: 2, identifiers: 40, secrets: 5, temporalServers: 1 };
    expect(leakScanProblem(clean)).toBeUndefined();
    expect(leakScanProblem({ ...clean, identifiers: 0 })).toMatch(/looked for nothing/);
    // nothing ran that a sandbox fed
    expect(leakScanProblem({ ...clean, workflows: 0, identifiers: 0 })).toBeUndefined();
  });

  it('recording without the run registry is an error inside vitest, not a silent no-op', () => {
    const previous = process.env[LEAK_REGISTRY_ENV];
    delete process.env[LEAK_REGISTRY_ENV];
    try {
      expect(() => recordErrorOutput('x', 'some stderr')).toThrow(
        /EHR_LEAK_REGISTRY_DIR is not set in this vitest process/,
      );
      expect(() => leakLogDir()).toThrow(/EHR_LEAK_REGISTRY_DIR/);
    } finally {
      if (previous !== undefined) process.env[LEAK_REGISTRY_ENV] = previous;
    }
  });
});
