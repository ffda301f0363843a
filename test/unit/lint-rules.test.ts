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
  floating: 'export function start(): void {\n  Promise.resolve(1);\n}\n',
  handled:
    'export async function start(): Promise<void> {\n  await Promise.resolve(1);\n  void Promise.resolve(2);\n}\n',
} as const;
type LibFixture = keyof typeof libFixtures;

/** One import from each folder the layer may not reach (README "Layout"); each names a real file. */
const FORBIDDEN = {
  client: "import { print } from '../client/output.js';\nexport const used = print;\n",
  workers:
    "import { installTemporalLogging } from '../workers/temporal-logging.js';\nexport const used = " +
    'installTemporalLogging;\n',
  sandbox: "import { createRng } from '../sandbox/prng.js';\nexport const used = createRng;\n",
  dev: "import { findFreePort } from '../dev/ports.js';\nexport const used = findFreePort;\n",
  activities: "import type { SyncPlan } from '../activities/types.js';\nexport type Used = SyncPlan;\n",
  workflows: "import { storePreset } from '../workflows/presets.js';\nexport const used = storePreset;\n",
} as const;
type Layer = keyof typeof FORBIDDEN;
const LIB_FORBIDDEN: Layer[] = ['client', 'workers', 'sandbox', 'dev', 'activities', 'workflows'];
const ACTIVITIES_FORBIDDEN: Layer[] = ['client', 'workers', 'sandbox', 'dev'];
const ZONE_RULE = 'import-x/no-restricted-paths';

const zoneFixtures = {
  lib: {
    ...Object.fromEntries(LIB_FORBIDDEN.map((layer) => [`imports-${layer}`, FORBIDDEN[layer]])),
    'imports-lib': "import { withTransaction } from './store/pool.js';\nexport const used = withTransaction;\n",
  },
  activities: {
    ...Object.fromEntries(ACTIVITIES_FORBIDDEN.map((layer) => [`imports-${layer}`, FORBIDDEN[layer]])),
    'imports-lib': "import { withTransaction } from '../lib/store/pool.js';\nexport const used = withTransaction;\n",
  },
} as const;

const SQL_RULE = 'no-restricted-syntax';
const sqlCode = [
  "import type { Queryable } from '../store/pool.js';",
  'export async function ids(db: Queryable): Promise<unknown> {',
  "  await db.query(`UPDATE integrations SET status = 'revoked' WHERE id = $1`, ['x']);",
  "  return db.query('SELECT id FROM integrations');",
  '}',
  '',
].join('\n');
/** The same statements in a CLI command, in a key-domain module, and in a key-domain repository. */
const sqlFixtures = {
  client: { sql: sqlCode.replace('../store/pool.js', '../lib/store/pool.js') },
  'lib/keys': { sql: sqlCode, 'sql-repository': sqlCode },
} as const;

const files = new Map<string, string>();
const results = new Map<string, ESLint.LintResult>();

function fileFor(dir: 'workflows' | 'lib' | 'activities' | 'client' | 'lib/keys', name: string): string {
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
  for (const [dir, fixtures] of Object.entries(zoneFixtures)) {
    for (const [name, code] of Object.entries(fixtures)) files.set(fileFor(dir as 'lib' | 'activities', name), code);
  }
  for (const [dir, fixtures] of Object.entries(sqlFixtures)) {
    for (const [name, code] of Object.entries(fixtures)) files.set(fileFor(dir as 'client' | 'lib/keys', name), code);
  }
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
  it.each(['pg', 'nodeFs', 'jose', 'storePool', 'activity', 'reexport'] as const)(
    'rejects a value import (%s)',
    (name) => {
      const found = fence(name);
      expect(found).toHaveLength(1);
      expect(found[0]).toContain('workflows/ may import only @temporalio/workflow');
    },
  );

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
    expect(messages(fileFor('workflows', 'dynamicImport'), 'no-restricted-syntax')).toEqual([
      'workflows/ may not load modules dynamically.',
    ]);
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

describe('layer zones (import-x/no-restricted-paths)', () => {
  it.each(LIB_FORBIDDEN)('lib/ may not import %s/', (layer) => {
    const found = messages(fileFor('lib', `imports-${layer}`), ZONE_RULE);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('lib/ is the domain');
  });

  it.each(ACTIVITIES_FORBIDDEN)('activities/ may not import %s/', (layer) => {
    const found = messages(fileFor('activities', `imports-${layer}`), ZONE_RULE);
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('activities/ import lib/');
  });

  it('lets lib/ and activities/ import lib/', () => {
    expect(messages(fileFor('lib', 'imports-lib'), ZONE_RULE)).toEqual([]);
    expect(messages(fileFor('activities', 'imports-lib'), ZONE_RULE)).toEqual([]);
  });
});

describe('SQL only in repositories', () => {
  it('refuses a statement in a CLI command and in key-domain logic, string and template alike', () => {
    expect(messages(fileFor('client', 'sql'), SQL_RULE)).toHaveLength(2);
    expect(messages(fileFor('lib/keys', 'sql'), SQL_RULE)).toHaveLength(2);
  });

  it("accepts it in a domain's repository", () => {
    expect(messages(fileFor('lib/keys', 'sql-repository'), SQL_RULE)).toEqual([]);
  });
});
