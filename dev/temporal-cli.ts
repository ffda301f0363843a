/**
 * Finds the Temporal CLI (`temporal`, which embeds the dev server and its Web UI), in this order:
 *   1. TEMPORAL_CLI (must be an executable file, else a ConfigError),
 *   2. `temporal` on PATH,
 *   3. the per-user cache ${XDG_CACHE_HOME:-~/.cache}/ehr-connectors/temporal-cli/v1.5.1/temporal,
 *   4. `go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into that cache when Go is on PATH.
 * v1.5.1 is pinned because tags from v1.6.0 on carry a `replace` directive and cannot be `go install`ed.
 * Measured: the first `go install` took 3m13s on a 2-core machine, module download included;
 * later runs find the cached binary instantly.
 *
 * Run directly (`npx tsx dev/temporal-cli.ts`) it resolves/builds the CLI, prints progress to
 * stderr and the binary's path to stdout — .ci/run uses that to build before the tests.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../lib/errors/index.js';
import { DevSetupError } from './errors.js';
import { findOnPath, isExecutableFile } from './process.js';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const PROGRESS_EVERY_MS = 15_000;

export interface ResolveTemporalCliOptions {
  /** One human-readable line per call (search steps, build progress). */
  onProgress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export function temporalCliCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'ehr-connectors', 'temporal-cli', TEMPORAL_CLI_VERSION);
}

export function temporalCliCachePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(temporalCliCacheDir(env), 'temporal');
}

/** `temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)` → '1.5.1'; a source build says '0.0.0-DEV'. */
export function parseTemporalCliVersion(output: string): string | undefined {
  return /temporal version (\S+)/.exec(output)?.[1];
}

/** True for 1.5.0 and newer, and for source builds (0.0.0-DEV), whose server version is what counts. */
export function isSupportedCliVersion(version: string): boolean {
  if (version.startsWith('0.0.0-')) return true;
  const m = /^v?(\d+)\.(\d+)\./.exec(version);
  if (!m) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 1 || (major === 1 && minor >= 5);
}

function cliVersion(binary: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(binary, ['--version'], { env, timeout: 20_000 }, (err, stdout) => {
      resolve(err ? undefined : (parseTemporalCliVersion(stdout) ?? stdout.trim()));
    });
  });
}

export async function resolveTemporalCli(options: ResolveTemporalCliOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const progress = options.onProgress ?? (() => undefined);

  const fromEnv = env.TEMPORAL_CLI;
  if (fromEnv !== undefined && fromEnv !== '') {
    const resolved = path.resolve(fromEnv);
    if (!isExecutableFile(resolved)) {
      throw new ConfigError('TEMPORAL_CLI', `${resolved} does not exist or is not an executable file`);
    }
    return resolved;
  }

  const onPath = findOnPath('temporal', env);
  if (onPath) {
    const version = await cliVersion(onPath, env);
    if (version === undefined) {
      progress(`ignoring ${onPath}: \`temporal --version\` failed`);
    } else {
      if (!isSupportedCliVersion(version)) {
        progress(
          `warning: ${onPath} is Temporal CLI ${version}; ` +
            `${TEMPORAL_CLI_VERSION} or newer is expected — using it anyway`,
        );
      }
      return onPath;
    }
  }

  const cached = temporalCliCachePath(env);
  if (isExecutableFile(cached)) return cached;

  const go = findOnPath('go', env);
  if (!go) {
    throw new DevSetupError(
      'Temporal CLI',
      `not found (TEMPORAL_CLI unset, no \`temporal\` on PATH, nothing at ${cached}) ` +
        `and Go is not installed to build it. ` +
        `Install Go ≥ 1.25 (https://go.dev/dl/, or your package manager) ` +
        `and retry — the CLI is then built once into ${cached} — ` +
        `or install the Temporal CLI yourself (https://docs.temporal.io/cli) ` +
        `and put it on PATH or set TEMPORAL_CLI=/path/to/temporal.`,
    );
  }
  return buildWithGo(go, cached, env, progress);
}

async function buildWithGo(
  go: string,
  target: string,
  env: NodeJS.ProcessEnv,
  progress: (line: string) => void,
): Promise<string> {
  const parent = path.dirname(path.dirname(target));
  fs.mkdirSync(parent, { recursive: true });
  // GOBIN is a fresh directory beside the cache entry, so the rename into place is atomic and a
  // half-written binary never sits at the cached path (two concurrent builds both just rename).
  const gobin = fs.mkdtempSync(path.join(parent, '.build-'));
  const started = Date.now();
  const line = () =>
    `building Temporal CLI ${TEMPORAL_CLI_VERSION} with go install (first build takes a few ` +
    `minutes)… ${Math.round((Date.now() - started) / 1000)}s elapsed`;
  progress(line());
  const timer = setInterval(() => progress(line()), PROGRESS_EVERY_MS);
  try {
    let output = '';
    const status = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
        env: { ...env, GOBIN: gobin, CGO_ENABLED: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const keep = (chunk: Buffer) => {
        output = (output + chunk.toString('utf8')).slice(-4_000);
      };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      child.once('error', reject);
      child.once('close', (code) => resolve(code));
    });
    const built = path.join(gobin, 'temporal');
    if (status !== 0 || !isExecutableFile(built)) {
      throw new DevSetupError(
        'Temporal CLI',
        `go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION} failed (exit ${status}). ` +
          `It needs Go ≥ 1.25 and network access to the Go module proxy. ` +
          `Output:\n${output.trim()}\nAlternatively install the CLI yourself and set TEMPORAL_CLI=/path/to/temporal.`,
      );
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.renameSync(built, target);
    const seconds = Math.round((Date.now() - started) / 1000);
    progress(`built Temporal CLI ${TEMPORAL_CLI_VERSION} in ${seconds}s → ${target}`);
    return target;
  } finally {
    clearInterval(timer);
    fs.rmSync(gobin, { recursive: true, force: true });
  }
}

if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  resolveTemporalCli({ onProgress: (l) => process.stderr.write(`${l}\n`) }).then(
    (cli) => process.stdout.write(`${cli}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
