/**
 * `ehrctl vendors matrix | show` and docs/vendor-matrix.md: the committed matrix is exactly what the
 * profiles generate (a profile change without regenerating the doc fails here), and the CLI prints
 * every vendor with its compensating controls in each format.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, exitCodeFor } from '../../client/ehrctl.js';
import { PROFILES } from '../../lib/vendors/profiles/index.js';
import { REGENERATE_MATRIX_COMMAND, renderMatrixMarkdown } from '../../lib/vendors/profiles/matrix.js';
import { VENDOR_IDS } from '../../lib/vendors/profiles/types.js';

const docPath = path.resolve(__dirname, '../../docs/vendor-matrix.md');

async function ehrctl(...args: string[]): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await buildProgram().parseAsync(['node', 'ehrctl', ...args]);
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('vendor matrix', () => {
  it('docs/vendor-matrix.md is the generated markdown', () => {
    const generated = renderMatrixMarkdown(VENDOR_IDS.map((id) => PROFILES[id]));
    const committed = fs.existsSync(docPath) ? fs.readFileSync(docPath, 'utf8') : '';
    expect(
      committed,
      `docs/vendor-matrix.md is out of date with lib/vendors/profiles; regenerate it: ${REGENERATE_MATRIX_COMMAND}`,
    ).toBe(generated);
  });

  it('--format md prints what the doc holds', async () => {
    expect(await ehrctl('vendors', 'matrix', '--format', 'md')).toBe(fs.readFileSync(docPath, 'utf8'));
  });

  it('the table has one row per vendor with confidence on every value and its controls', async () => {
    const lines = (await ehrctl('vendors', 'matrix')).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^vendor\s+fhir\s+auth\s+algorithms/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([...VENDOR_IDS]);
    const ecw = lines.find((l) => l.startsWith('eclinicalworks'))!;
    expect(ecw).toContain('250/min per base-url, fixed window, no Retry-After (M)');
    expect(ecw).toContain('no-push');
  });

  it('--format json carries each profile, its controls and the recommended settings', async () => {
    const entries = JSON.parse(await ehrctl('vendors', 'matrix', '--format', 'json')) as Array<{
      profile: { id: string };
      compensatingControls: Array<{ weakness: string; setting: string }>;
      recommendedSettings: { syncIntervalHours: number; secretRotationDays: number | null };
    }>;
    expect(entries.map((e) => e.profile.id)).toEqual([...VENDOR_IDS]);
    const oracle = entries.find((e) => e.profile.id === 'oracle-health')!;
    expect(oracle.recommendedSettings).toMatchObject({ syncIntervalHours: 6, secretRotationDays: 90 });
    expect(oracle.compensatingControls.find((c) => c.weakness === 'no-push')?.setting).toContain('6 h');
  });

  it('show prints every fact with its source and the controls; unknown vendors and formats are refused', async () => {
    const text = await ehrctl('vendors', 'show', 'athenahealth');
    expect(text).toContain('tokens.lifetimeSeconds');
    expect(text).toContain('docs.athenahealth.com');
    expect(text).toContain('recommended: sync every 6 h');
    const missing = await ehrctl('vendors', 'show', 'allscripts').catch((err: unknown) => err);
    expect(exitCodeFor(missing)).toBe(3);
    const badFormat = await ehrctl('vendors', 'matrix', '--format', 'xml').catch((err: unknown) => err);
    expect(exitCodeFor(badFormat)).toBe(2);
  });
});
