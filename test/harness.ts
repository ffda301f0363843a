/**
 * What tests get from the global setup (test/global-setup.ts): ONE real Temporal dev server and ONE
 * real PostgreSQL (migrated) per test run, a KEK dir and a secrets dir in a temp dir. Tests isolate
 * themselves with unique ids (tenants, integrations, task queues), never by separate servers.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

export interface TestInfra {
  temporalAddress: string;
  namespace: string;
  /** The restricted application role (a LOGIN member of `ehr_app`): what the product's processes use. */
  databaseUrl: string;
  /**
   * The migration owner. Only for tests that act as the operator or as an attacker with owner rights
   * (tampering with the audit trail, creating databases, managing roles): never for the product's path.
   */
  ownerDatabaseUrl: string;
  kekDir: string;
  secretsDir: string;
  /**
   * Where the run's workflow bundle goes (test/integration/support.ts builds it there once, the first time a
   * file asks for it): every worker of the run loads it, as the product's WORKER_WORKFLOW_BUNDLE.
   */
  workflowBundlePath: string;
}

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  export interface ProvidedContext extends TestInfra {}
}

export interface TestEnv extends TestInfra {
  /** The same values as configuration environment variables, for loadConfig({...configEnv, ...overrides}). */
  configEnv: Record<string, string>;
}

export function testEnv(): TestEnv {
  const infra: TestInfra = {
    temporalAddress: inject('temporalAddress'),
    namespace: inject('namespace'),
    databaseUrl: inject('databaseUrl'),
    ownerDatabaseUrl: inject('ownerDatabaseUrl'),
    kekDir: inject('kekDir'),
    secretsDir: inject('secretsDir'),
    workflowBundlePath: inject('workflowBundlePath'),
  };
  if (!infra.temporalAddress || !infra.databaseUrl) {
    throw new Error(
      'this test needs Temporal and PostgreSQL, ' +
        'but the global setup did not start them (EHR_TEST_INFRA=none); unset EHR_TEST_INFRA',
    );
  }
  return {
    ...infra,
    configEnv: {
      TEMPORAL_ADDRESS: infra.temporalAddress,
      TEMPORAL_NAMESPACE: infra.namespace,
      DATABASE_URL: infra.databaseUrl,
      EHR_KEK_DIR: infra.kekDir,
      EHR_SECRETS_DIR: infra.secretsDir,
    },
  };
}

let counter = 0;

/**
 * A fresh id for this test run that satisfies ID_PATTERN (lowercase, digits, hyphens, ≤ 63 chars):
 * `<prefix>-<pid>-<n>-<random>`. Use it for tenants, integrations, task queues, workflow ids.
 */
export function uniqueId(prefix: string): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+/, '')
      .slice(0, 32) || 'x';
  counter += 1;
  return `${clean}-${process.pid.toString(36)}-${counter.toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** `url` (same role, same password) pointed at another database of the same cluster. */
export function onDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
