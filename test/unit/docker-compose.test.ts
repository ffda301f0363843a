/** docker-compose.yml stays in step with the configuration schema and keeps secrets out of the file. */
import fs from 'node:fs';
import os from 'node:os';
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

/** Services that run the product's other entry points from the worker's image. */
const APP_ENTRY_POINTS: Record<string, string> = { 'webhook-receiver': 'workers/webhook-receiver.ts', 'codec-server': 'workers/codec-server.ts' };
const APP_SERVICES = Object.keys(APP_ENTRY_POINTS);
const COMPOSE_VARS = {
  POSTGRES_PASSWORD: 'abc123',
  EHR_KEK_HOST_DIR: '/srv/keys',
  EHR_JWKS_PUBLIC_URL: 'https://jwks.example.org',
  CODEC_AUTH_JWKS_URL: 'https://idp.example.org/jwks.json',
  CODEC_AUTH_ISSUER: 'https://idp.example.org',
};

/**
 * A service's environment as the container sees it: compose variables substituted, and docker
 * secret files (`file:/run/secrets/<name>`) replaced by 0600 stand-ins so reference checks can run.
 */
function resolvedEnvironment(name: string): Record<string, string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-secrets-'));
  return Object.fromEntries(
    Object.entries(environmentOf(services[name]!)).map(([k, v]) => {
      const value = interpolate(v, COMPOSE_VARS);
      const secret = /^file:\/run\/secrets\/([a-z_]+)$/.exec(value);
      if (!secret) return [k, value];
      expect(services[name]!.secrets, `${name} mounts secret ${secret[1]}`).toContain(secret[1]);
      expect(compose.secrets?.[secret[1]!]?.file, `secret ${secret[1]}`).toMatch(REQUIRED_INTERPOLATION);
      const file = path.join(dir, secret[1]!);
      fs.writeFileSync(file, 'synthetic stand-in', { mode: 0o600 });
      return [k, `file:${file}`];
    }),
  );
}

describe('docker-compose.yml', () => {
  it('has the production services', () => {
    for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', ...APP_SERVICES]) expect(services[name], name).toBeDefined();
    expect(services.postgresql!.image).toMatch(/^postgres:16/);
    expect(services.temporal!.image).toMatch(/^temporalio\/auto-setup:/);
    expect(services['temporal-ui']!.image).toMatch(/^temporalio\/ui:/);
    expect(services.worker!.build).toBeDefined();
    expect(JSON.stringify(services.worker!.command)).toContain('workers/worker.ts');
    for (const [name, entry] of Object.entries(APP_ENTRY_POINTS)) {
      expect(services[name]!.build, name).toEqual(services.worker!.build);
      expect(JSON.stringify(services[name]!.command), name).toContain(entry);
      expect(fs.existsSync(path.join(repoRoot, entry)), entry).toBe(true);
    }
  });

  it('builds the worker image from a Dockerfile that ships everything the worker imports', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    for (const dir of ['lib', 'activities', 'workflows', 'workers', 'migrations']) expect(dockerfile, dir).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it.each(['worker', ...APP_SERVICES])('gives the %s every required configuration field, and only known ones', (name) => {
    const env = environmentOf(services[name]!);
    const known = new Set<string>(configFields.map((f) => f.name));
    for (const { name: field, required } of configFields) if (required) expect(Object.keys(env), `${name}: required ${field}`).toContain(field);
    for (const key of Object.keys(env)) expect(known.has(key) || ALLOWED_EXTRAS.has(key), `unknown ${name} variable ${key}`).toBe(true);
  });

  it.each(APP_SERVICES)('yields a %s configuration that loadConfig accepts once the secrets are supplied', (name) => {
    const config = loadConfig(resolvedEnvironment(name));
    expect(config.DATABASE_URL).toBe('postgresql://ehr@postgresql:5432/ehr_connectors');
    // Listeners must be reachable from the other containers, on the port the service exposes or publishes.
    if (name === 'webhook-receiver') {
      expect(config.WEBHOOK_HOST).toBe('0.0.0.0');
      expect(services[name]!.expose).toContain(String(config.WEBHOOK_PORT));
    } else {
      expect(config.CODEC_HOST).toBe('0.0.0.0');
      expect(JSON.stringify(services[name]!.ports)).toContain(`:${config.CODEC_PORT}"`);
      // The key comes from a docker secret by reference, never from the environment itself.
      expect(environmentOf(services[name]!).CODEC_TLS_KEY).toMatch(/^file:\/run\/secrets\//);
      expect(config.CODEC_TLS_KEY).toMatch(/^file:\//);
    }
  });

  it('mounts the webhook secrets where the worker writes them, read-only', () => {
    const secretsDir = environmentOf(services.worker!).EHR_SECRETS_DIR!;
    expect(environmentOf(services['webhook-receiver']!).EHR_SECRETS_DIR).toBe(secretsDir);
    expect(services['webhook-receiver']!.volumes).toContain(`ehr-secrets:${secretsDir}:ro`);
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
    for (const name of ['worker', 'webhook-receiver', 'temporal-ui', 'temporal-admin-tools']) {
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
