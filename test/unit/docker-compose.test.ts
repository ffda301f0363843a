/** docker-compose.yml stays in step with the configuration schema and keeps secrets out of the file. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configFields, loadConfig } from '../../lib/config/schema.js';
import { SEARCH_ATTRIBUTES } from '../../lib/domain.js';
import { loadMigrateConfig } from '../../lib/config/migrate-config.js';
import { APP_LOGIN_ROLE } from '../../lib/store/roles.js';
import { NODE_ARGS, PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';

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
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** Substitutes compose interpolation the way `docker compose` would with the given variables set. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (_m, name: string, op: string | undefined, arg: string | undefined) => {
      const set = vars[name];
      if (op?.endsWith('-')) return set !== undefined && set !== '' ? set : (arg ?? '');
      if (set === undefined) throw new Error(`\${${name}} is required`);
      return set;
    },
  );
}

/** Services that run the product's other entry points from the worker's image. */
const APP_ENTRY_POINTS: Record<string, string> = {
  'webhook-receiver': 'workers/webhook-receiver.ts',
  'codec-server': 'workers/codec-server.ts',
  gateway: 'workers/gateway.ts',
};
const APP_SERVICES = Object.keys(APP_ENTRY_POINTS);
/**
 * What the worker, webhook receiver and codec server connect as: the application's login role, password from
 * app_pgpass.
 */
const APP_DATABASE_URL = `postgresql://${APP_LOGIN_ROLE}@postgresql:5432/ehr_connectors`;
const COMPOSE_VARS = {
  POSTGRES_PASSWORD: 'abc123',
  TEMPORAL_DB_PASSWORD: 'def456',
  EHR_KEK_HOST_DIR: '/srv/keys',
  EHR_JWKS_PUBLIC_URL: 'https://jwks.example.org',
  CODEC_AUTH_JWKS_URL: 'https://idp.example.org/jwks.json',
  CODEC_AUTH_ISSUER: 'https://idp.example.org',
  EHR_GATEWAY_PUBLIC_URL: 'https://gateway.example.org',
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
    for (const name of ['postgresql', 'temporal', 'temporal-ui', 'worker', ...APP_SERVICES])
      expect(services[name], name).toBeDefined();
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

  it('starts every process of ours as the tests and benchmarks do (workers/node-process.ts)', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...nodeArgsFor('workers/worker.ts')]);
    for (const [name, value] of Object.entries(PROCESS_ENV))
      expect(dockerfile, name).toMatch(new RegExp(`^ENV ${name}=${value}$`, 'm'));
    for (const name of ['worker', 'migrate', ...APP_SERVICES]) {
      const command = services[name]!.command as string[];
      expect(command.slice(0, 1 + NODE_ARGS.length), name).toEqual(['node', ...NODE_ARGS]);
    }
  });

  it('builds the worker image from a Dockerfile that ships everything the worker imports', () => {
    const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
    for (const dir of ['lib', 'activities', 'workflows', 'workers', 'migrations'])
      expect(dockerfile, dir).toMatch(new RegExp(`^COPY ${dir} \\./${dir}$`, 'm'));
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it.each(['worker', ...APP_SERVICES])(
    'gives the %s every required configuration field, and only known ones',
    (name) => {
      const env = environmentOf(services[name]!);
      const known = new Set<string>(configFields.map((f) => f.name));
      for (const { name: field, required } of configFields)
        if (required) expect(Object.keys(env), `${name}: required ${field}`).toContain(field);
      for (const key of Object.keys(env))
        expect(known.has(key) || ALLOWED_EXTRAS.has(key), `unknown ${name} variable ${key}`).toBe(true);
    },
  );

  it.each(APP_SERVICES)('yields a %s configuration that loadConfig accepts once the secrets are supplied', (name) => {
    const config = loadConfig(resolvedEnvironment(name));
    expect(config.DATABASE_URL).toBe(APP_DATABASE_URL);
    // Listeners must be reachable from the other containers, on the port the service exposes or publishes.
    if (name === 'webhook-receiver') {
      expect(config.WEBHOOK_HOST).toBe('0.0.0.0');
      expect(services[name]!.expose).toContain(String(config.WEBHOOK_PORT));
    } else if (name === 'gateway') {
      expect(config.GATEWAY_HOST).toBe('0.0.0.0');
      expect(JSON.stringify(services[name]!.ports)).toContain(`:${config.GATEWAY_PORT}"`);
      expect(config.GATEWAY_PUBLIC_URL).toBe(COMPOSE_VARS.EHR_GATEWAY_PUBLIC_URL);
      // Its token-signing key and TLS key come from docker secrets by reference, never from the environment.
      for (const field of ['GATEWAY_ACCESS_SIGNING_KEY', 'GATEWAY_TLS_KEY'] as const) {
        expect(environmentOf(services[name]!)[field], field).toMatch(/^file:\/run\/secrets\//);
        expect(config[field], field).toMatch(/^file:\//);
      }
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
      Object.entries(env).map(([k, v]) => [
        k,
        interpolate(v, {
          POSTGRES_PASSWORD: 'abc123',
          EHR_KEK_HOST_DIR: '/srv/keys',
          EHR_JWKS_PUBLIC_URL: 'https://jwks.example.org',
        }),
      ]),
    );
    const config = loadConfig(resolved);
    expect(config.DATABASE_URL).toBe(APP_DATABASE_URL);
    expect(env.PGPASSFILE).toBe('/run/secrets/app_pgpass');
    expect(compose.secrets?.app_pgpass?.file).toBe('${EHR_APP_PGPASS_FILE:?set EHR_APP_PGPASS_FILE}');
  });

  it('points TEMPORAL_ADDRESS at the temporal service and DATABASE_URL at the postgresql service', () => {
    for (const name of ['worker', 'webhook-receiver', 'gateway', 'temporal-ui', 'temporal-admin-tools']) {
      const address = environmentOf(services[name]!).TEMPORAL_ADDRESS ?? '';
      expect(address, name).toBe('temporal:7233');
    }
    expect(new URL(interpolate(environmentOf(services.worker!).DATABASE_URL!, { POSTGRES_PASSWORD: 'x' })).host).toBe(
      'postgresql:5432',
    );
  });

  it('contains no literal secret values', () => {
    for (const [serviceName, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(environmentOf(service))) {
        const where = `${serviceName}.${key}`;
        if (SECRET_KEY.test(key) && !SECRET_REFERENCE_KEY.test(key))
          expect(value, where).toMatch(REQUIRED_INTERPOLATION);
        const userinfo = /^[a-z][a-z0-9+.-]*:\/\/[^/:@]*:([^@]*)@/i.exec(value);
        if (userinfo) expect(userinfo[1], `${where} password part`).toMatch(REQUIRED_INTERPOLATION);
      }
    }
    // And no key material or default passwords anywhere in the file.
    const text = fs.readFileSync(path.resolve(__dirname, '../../docker-compose.yml'), 'utf8');
    expect(text).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY/);
    expect(text).not.toMatch(/PASSWORD:-/);
  });

  describe('database roles: migrations as the owner, the product as the application role', () => {
    const owner = environmentOf(services.postgresql!).POSTGRES_USER!;
    // The compose variable that holds the owner's password, e.g. POSTGRES_PASSWORD in `${POSTGRES_PASSWORD:?…}`.
    const ownerPasswordVar = /^\$\{([A-Z_][A-Z0-9_]*)/.exec(
      environmentOf(services.postgresql!).POSTGRES_PASSWORD!,
    )![1]!;
    const mentionsOwnerPassword = new RegExp(`\\$\\{?${ownerPasswordVar}\\b`);

    it.each(['worker', ...APP_SERVICES])(
      '%s logs in as the application login role with its own pgpass secret',
      (name) => {
        const env = environmentOf(services[name]!);
        expect(decodeURIComponent(new URL(env.DATABASE_URL!).username), `${name} DATABASE_URL user`).toBe(
          APP_LOGIN_ROLE,
        );
        expect(env.PGPASSFILE).toBe('/run/secrets/app_pgpass');
        expect(services[name]!.secrets, name).toContain('app_pgpass');
      },
    );

    it("gives the owner's credentials to migrate alone", () => {
      expect(owner).toBe('ehr');
      const migrate = environmentOf(services.migrate!);
      expect(decodeURIComponent(new URL(migrate.DATABASE_URL!).username)).toBe(owner);
      expect(migrate.PGPASSFILE).toBe('/run/secrets/pgpass');
      expect(services.migrate!.secrets).toContain('pgpass');
      for (const [name, service] of Object.entries(services)) {
        if (name === 'migrate' || name === 'postgresql') continue;
        expect(service.secrets ?? [], `${name} mounts the owner's pgpass`).not.toContain('pgpass');
        for (const [key, value] of Object.entries(environmentOf(service))) {
          const where = `${name}.${key}`;
          expect(value, `${where} carries the owner's password`).not.toMatch(mentionsOwnerPassword);
          expect(value, `${where} names the owner's pgpass`).not.toBe('/run/secrets/pgpass');
          if (/^postgres(ql)?:\/\//.test(value))
            expect(decodeURIComponent(new URL(value).username), `${where} user`).not.toBe(owner);
          if (/(^|_)(USER|ROLE)$/.test(key)) expect(value, `${where}`).not.toBe(owner);
        }
      }
    });

    it('runs the Temporal server as its own role, which migrate creates before Temporal starts', () => {
      const temporal = environmentOf(services.temporal!);
      const migrate = environmentOf(services.migrate!);
      expect(temporal.POSTGRES_USER).toBe(migrate.EHR_TEMPORAL_DB_ROLE);
      expect(temporal.POSTGRES_PWD).toBe(migrate.EHR_TEMPORAL_DB_PASSWORD);
      expect(temporal.POSTGRES_PWD).toMatch(REQUIRED_INTERPOLATION);
      expect(services.temporal!.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
    });

    it('migrate runs workers/migrate.ts and sets the role the services log in as, from the pgpass file they use', () => {
      expect(JSON.stringify(services.migrate!.command)).toContain('workers/migrate.ts');
      expect(fs.existsSync(path.join(repoRoot, 'workers/migrate.ts'))).toBe(true);
      const migrate = environmentOf(services.migrate!);
      expect(migrate.EHR_APP_DATABASE_URL).toBe(APP_DATABASE_URL);
      expect(migrate.EHR_APP_PGPASSFILE).toBe(environmentOf(services.worker!).PGPASSFILE);
      expect(services.migrate!.secrets).toContain('app_pgpass');
      // The secret roots it records are the paths the services resolve stored references under.
      for (const key of ['EHR_SECRETS_DIR', 'EHR_KEK_DIR'])
        expect(migrate[key], key).toBe(environmentOf(services.worker!)[key]);
      for (const name of ['worker', ...APP_SERVICES]) {
        expect(services[name]!.depends_on, name).toMatchObject({
          migrate: { condition: 'service_completed_successfully' },
        });
      }
      // The job's configuration loads, with a stand-in for the app's pgpass file as docker would mount it.
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-pgpass-'));
      const pgpass = path.join(dir, 'app_pgpass');
      fs.writeFileSync(pgpass, `postgresql:5432:ehr_connectors:${APP_LOGIN_ROLE}:synthetic-app-pw\n`, { mode: 0o600 });
      const resolved = Object.fromEntries(
        Object.entries(migrate).map(([k, v]) => [
          k,
          interpolate(v, { ...COMPOSE_VARS, TEMPORAL_DB_PASSWORD: 'synthetic-temporal-pw' }),
        ]),
      );
      const config = loadMigrateConfig({ ...resolved, EHR_APP_PGPASSFILE: pgpass });
      expect(config).toMatchObject({
        app: { role: APP_LOGIN_ROLE, password: 'synthetic-app-pw', databaseUrl: APP_DATABASE_URL },
        temporal: { role: 'temporal', password: 'synthetic-temporal-pw' },
      });
      expect(decodeURIComponent(new URL(config.ownerDatabaseUrl).username)).toBe(owner);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('registers every product search attribute', () => {
    const script = JSON.stringify(services['temporal-admin-tools']?.command ?? '');
    for (const name of Object.values(SEARCH_ATTRIBUTES)) expect(script).toContain(name);
  });
});
