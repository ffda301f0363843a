/** docker-compose.yml stays in step with the configuration schema and keeps secrets out of the file. */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configFields, loadConfig } from '../../lib/config/schema.js';
import { SEARCH_ATTRIBUTES } from '../../lib/domain.js';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  [key: string]: unknown;
}

const repoRoot = path.resolve(__dirname, '../..');
const compose = parse(fs.readFileSync(path.resolve(__dirname, '../../docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
};
const services = compose.services;

/** Worker environment keys that are not configuration fields but are allowed. */
/** Read by pg itself: where the database password lives (a docker secret), so DATABASE_URL carries none. */
const ALLOWED_EXTRAS = new Set(['NODE_ENV', 'PGPASSFILE']);
const SECRET_KEY = /PASSWORD|PASSWD|_PWD$|SECRET|TOKEN|API_KEY|PRIVATE/i;
/** Names that point at where a secret lives (a directory or file), not at the secret itself. */
const SECRET_REFERENCE_KEY = /_(DIR|FILE|PATH)$/;
/** `${VAR:?message}` or `${VAR?message}`: required, no default. */
const REQUIRED_INTERPOLATION = /^\$\{[A-Z_][A-Z0-9_]*:?\?[^}]*\}$/;

function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const i = entry.indexOf('=');
      return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Substitutes compose interpolation the way `docker compose` would with the given variables set. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_m, name: string, op: string | undefined, arg: string | undefined) => {
    const set = vars[name];
    if (op?.endsWith('-')) return set !== undefined && set !== '' ? set : arg ?? '';
    if (set === undefined) throw new Error(`\${${name}} is required`);
    return set;
  });
}

describe('docker-compose.yml', () => {
  it('has the production services', () => {
    for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker']) expect(services[name], name).toBeDefined();
    expect(services.postgresql!.image).toMatch(/^postgres:16/);
    expect(services.temporal!.image).toMatch(/^temporalio\/auto-setup:/);
    expect(services['temporal-ui']!.image).toMatch(/^temporalio\/ui:/);
    expect(services.worker!.build).toBeDefined();
    expect(JSON.stringify(services.worker!.command)).toContain('workers/worker.ts');
  });

  it('builds the worker image from a Dockerfile that ships everything the worker imports', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    for (const dir of ['lib', 'activities', 'workflows', 'workers', 'migrations']) expect(dockerfile, dir).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('gives the worker every required configuration field, and only known ones', () => {
    const env = environmentOf(services.worker!);
    const known = new Set<string>(configFields.map((f) => f.name));
    for (const { name, required } of configFields) if (required) expect(Object.keys(env), `required ${name}`).toContain(name);
    for (const key of Object.keys(env)) expect(known.has(key) || ALLOWED_EXTRAS.has(key), `unknown worker variable ${key}`).toBe(true);
  });

  it('yields a worker configuration that loadConfig accepts once the secrets are supplied', () => {
    const env = environmentOf(services.worker!);
    const resolved = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, interpolate(v, { POSTGRES_PASSWORD: 'abc123', EHR_KEK_HOST_DIR: '/srv/keys', EHR_JWKS_PUBLIC_URL: 'https://jwks.example.org' })]),
    );
    const config = loadConfig(resolved);
    expect(config.DATABASE_URL).toBe('postgresql://ehr@postgresql:5432/ehr_connectors');
    expect(env.PGPASSFILE).toBe('/run/secrets/pgpass');
    expect(compose.secrets?.pgpass?.file).toBe('${EHR_PGPASS_FILE:?set EHR_PGPASS_FILE}');
  });

  it('points TEMPORAL_ADDRESS at the temporal service and DATABASE_URL at the postgresql service', () => {
    for (const name of ['worker', 'temporal-ui', 'temporal-admin-tools']) {
      const address = environmentOf(services[name]!).TEMPORAL_ADDRESS ?? '';
      expect(address, name).toBe('temporal:7233');
    }
    expect(new URL(interpolate(environmentOf(services.worker!).DATABASE_URL!, { POSTGRES_PASSWORD: 'x' })).host).toBe('postgresql:5432');
  });

  it('contains no literal secret values', () => {
    for (const [serviceName, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(environmentOf(service))) {
        const where = `${serviceName}.${key}`;
        if (SECRET_KEY.test(key) && !SECRET_REFERENCE_KEY.test(key)) expect(value, where).toMatch(REQUIRED_INTERPOLATION);
        const userinfo = /^[a-z][a-z0-9+.-]*:\/\/[^/:@]*:([^@]*)@/i.exec(value);
        if (userinfo) expect(userinfo[1], `${where} password part`).toMatch(REQUIRED_INTERPOLATION);
      }
    }
    // And no key material or default passwords anywhere in the file.
    const text = fs.readFileSync(path.resolve(__dirname, '../../docker-compose.yml'), 'utf8');
    expect(text).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
    expect(text).not.toMatch(/PASSWORD:-/);
  });

  it('registers every product search attribute', () => {
    const script = JSON.stringify(services['temporal-admin-tools']?.command ?? '');
    for (const name of Object.values(SEARCH_ATTRIBUTES)) expect(script).toContain(name);
  });
});
