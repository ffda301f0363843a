/**
 * The lint fence around workflows/ and the typed promise rules, exercised through the ESLint Node API
 * with the repository's own eslint.config.mjs. Type-aware rules refuse virtual files, so fixtures are
 * written as real (type-correct) files with a unique name and removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const TAG = `zz-lint-fixture-${randomBytes(4).toString('hex')}`;
const FENCE_RULE = '@typescript-eslint/no-restricted-imports';
const FLOATING_RULE = '@typescript-eslint/no-floating-promises';

const workflowFixtures = {
  pg: "import { Pool } from 'pg';\nexport const used = Pool;\n",
  nodeFs: "import { readFileSync } from 'node:fs';\nexport const used = readFileSync;\n",
  jose: "import { SignJWT } from 'jose';\nexport const used = SignJWT;\n",
  storePool: "import { withTransaction } from '../lib/store/pool.js';\nexport const used = withTransaction;\n",
  activity: "import { Context } from '@temporalio/activity';\nexport const used = Context;\n",
  reexport: "export { readFileSync } from 'node:fs';\n",
  allowed: [
    "import { proxyActivities, sleep } from '@temporalio/workflow';",
    "import { storePreset } from './presets.js';",
    "import type { Pool } from 'pg';",
    "import type { KeyObject } from 'node:crypto';",
    "import type { AuditEvent } from '../lib/audit/chain.js';",
    "import type { Queryable } from '../lib/store/pool.js';",
    'export const used = [proxyActivities, sleep, storePreset];',
    'export type Used = [Pool, KeyObject, AuditEvent, Queryable];',
    '',
  ].join('\n'),
  dotSlashEscape: "import { withTransaction } from './../lib/store/pool.js';\nexport const used = withTransaction;\n",
  dynamicImport: "export async function load(): Promise<unknown> {\n  return (await import('pg')).Pool;\n}\n",
} as const;
type WorkflowFixture = keyof typeof workflowFixtures;

const libFixtures = {
  floating: "export function start(): void {\n  Promise.resolve(1);\n}\n",
  handled: "export async function start(): Promise<void> {\n  await Promise.resolve(1);\n  void Promise.resolve(2);\n}\n",
} as const;
type LibFixture = keyof typeof libFixtures;

const files = new Map<string, string>();
const results = new Map<string, ESLint.LintResult>();

function fileFor(dir: 'workflows' | 'lib', name: string): string {
  return path.join(ROOT, dir, `${TAG}-${name}.ts`);
}

function messages(file: string, ruleId: string): string[] {
  const result = results.get(file);
  if (!result) throw new Error(`no lint result for ${path.relative(ROOT, file)}`);
  const fatal = result.messages.filter((m) => m.fatal);
  expect(fatal.map((m) => m.message)).toEqual([]);
  return result.messages.filter((m) => m.ruleId === ruleId).map((m) => m.message);
}

const fence = (name: WorkflowFixture): string[] => messages(fileFor('workflows', name), FENCE_RULE);
const floating = (name: LibFixture): string[] => messages(fileFor('lib', name), FLOATING_RULE);

beforeAll(async () => {
  for (const [name, code] of Object.entries(workflowFixtures)) files.set(fileFor('workflows', name), code);
  for (const [name, code] of Object.entries(libFixtures)) files.set(fileFor('lib', name), code);
  try {
    for (const [file, code] of files) fs.writeFileSync(file, code, { flag: 'wx' });
    const eslint = new ESLint({ cwd: ROOT });
    for (const result of await eslint.lintFiles([...files.keys()])) results.set(result.filePath, result);
  } finally {
    for (const file of files.keys()) fs.rmSync(file, { force: true });
  }
}, 120_000);

afterAll(() => {
  for (const file of files.keys()) fs.rmSync(file, { force: true });
});

describe('workflows/ import fence', () => {
  it.each(['pg', 'nodeFs', 'jose', 'storePool', 'activity', 'reexport'] as const)('rejects a value import (%s)', (name) => {
    const found = fence(name);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('workflows/ may import only @temporalio/workflow');
  });

  it('accepts @temporalio/workflow, sibling files and type-only imports of anything', () => {
    expect(fence('allowed')).toEqual([]);
    const result = results.get(fileFor('workflows', 'allowed'));
    expect(result?.errorCount).toBe(0);
  });

  it('rejects a "./../" path that leaves workflows/', () => {
    expect(fence('dotSlashEscape')).toHaveLength(1);
  });

  // Gap (eslint.config.mjs): no-restricted-imports does not see dynamic import(), so
  // `await import('pg')` in a workflow file passes lint.
  it('rejects a dynamic import() of a non-workflow module', () => {
    expect(messages(fileFor('workflows', 'dynamicImport'), 'no-restricted-syntax')).toEqual(['workflows/ may not load modules dynamically.']);
  });

  it('does not apply the fence outside workflows/', () => {
    expect(messages(fileFor('lib', 'floating'), FENCE_RULE)).toEqual([]);
  });
});

describe('typed promise rules', () => {
  it('no-floating-promises fires on an unawaited promise in lib/', () => {
    expect(floating('floating')).toHaveLength(1);
  });

  it('is satisfied by await or an explicit void', () => {
    expect(floating('handled')).toEqual([]);
  });
});
