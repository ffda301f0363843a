/**
 * Builds the interop FHIR server (test/interop/hapi-server: HAPI FHIR JPA from Maven Central) into a
 * per-user cache outside the repo, ${XDG_CACHE_HOME:-~/.cache}/ehr-connectors/hapi/<hash>/, where
 * <hash> covers the pom and every source file: a change rebuilds, anything else reuses the jar.
 * Measured on a 2-core machine: the first build downloads ~330 MB into ~/.m2 (about a minute here),
 * later builds of a changed source take ~10 s, and a cached jar is found instantly.
 *
 * Run directly (`npx tsx test/interop/hapi-build.ts`) it builds if needed, prints progress to stderr
 * and the jar's path to stdout — .ci/run uses that so the Maven download happens once, before tests.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DevSetupError } from '../../dev/errors.js';
import { findOnPath, isExecutableFile } from '../../dev/process.js';

export const HAPI_SERVER_DIR = path.join(__dirname, 'hapi-server');
const JAR_NAME = 'hapi-interop-server.jar';
const PROGRESS_EVERY_MS = 15_000;
/** Bumped when what a cache entry holds changes shape (2: the jar extracted into app/). */
const CACHE_LAYOUT = 2;
const JAVA_FIX =
  'install a JDK ≥ 17 and Maven (Debian: apt-get install -y openjdk-17-jdk-headless maven), ' +
  'or set JAVA_HOME to a JDK ≥ 17';

export interface HapiBuildOptions {
  onProgress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export function hapiCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'ehr-connectors', 'hapi');
}

/** The files that make up the server's build, relative to its directory, sorted. */
export function hapiSourceFiles(dir = HAPI_SERVER_DIR): string[] {
  const files = ['pom.xml'];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) files.push(child);
    }
  };
  walk('src');
  return files.sort();
}

/** sha256 over each source file's path and content; the cache entry's name. */
export function hapiSourceHash(dir = HAPI_SERVER_DIR): string {
  const hash = crypto.createHash('sha256').update(`layout ${CACHE_LAYOUT}\0`);
  for (const rel of hapiSourceFiles(dir)) {
    hash.update(rel.split(path.sep).join('/')).update('\0');
    hash.update(fs.readFileSync(path.join(dir, rel))).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** `java` of JAVA_HOME when set, else the one on PATH; throws with a fix when there is none ≥ 17. */
export async function resolveJava(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const fromHome = env.JAVA_HOME ? path.join(env.JAVA_HOME, 'bin', 'java') : undefined;
  const java = fromHome && isExecutableFile(fromHome) ? fromHome : findOnPath('java', env);
  if (!java)
    throw new DevSetupError('HAPI FHIR server', 'no `java` found (JAVA_HOME unset or empty, none on PATH)', JAVA_FIX);
  const output = await new Promise<string>((resolve) => {
    execFile(java, ['-version'], { env, timeout: 20_000 }, (err, stdout, stderr) =>
      resolve(err ? '' : stderr + stdout),
    );
  });
  const major = Number(/version "(\d+)/.exec(output)?.[1] ?? NaN);
  if (!(major >= 17)) {
    throw new DevSetupError(
      'HAPI FHIR server',
      `${java} is not a Java ≥ 17 (it said: ${output.trim() || 'nothing'})`,
      JAVA_FIX,
    );
  }
  return java;
}

/** Where the launcher jar of the current sources lives in the cache (it may not be built yet). */
export function cachedHapiJarPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(hapiCacheRoot(env), hapiSourceHash(), 'app', JAR_NAME);
}

/**
 * Path of the server's launcher jar (`java -jar` it; its libraries lie in lib/ beside it), built with
 * `mvn -B -q package` and extracted into the cache when it is not there yet.
 */
export async function ensureHapiJar(options: HapiBuildOptions = {}): Promise<string> {
  const env = options.env ?? process.env;
  const progress = options.onProgress ?? (() => undefined);
  const entry = path.join(hapiCacheRoot(env), hapiSourceHash());
  const jar = cachedHapiJarPath(env);
  if (fs.existsSync(jar)) return jar;

  const java = await resolveJava(env);
  const mvn = findOnPath('mvn', env);
  if (!mvn) throw new DevSetupError('HAPI FHIR server', 'Maven (`mvn`) is not on PATH', JAVA_FIX);

  // Built in a scratch copy beside the entry: the repo gets no target/, and the rename into place is
  // atomic, so two concurrent builds never leave a half-written jar at the cached path.
  fs.mkdirSync(hapiCacheRoot(env), { recursive: true });
  const scratch = fs.mkdtempSync(path.join(hapiCacheRoot(env), '.build-'));
  const started = Date.now();
  const line = () =>
    `building the HAPI FHIR interop server with Maven (the first build downloads ~330 MB into ~/.m2)… ` +
    `${Math.round((Date.now() - started) / 1000)}s elapsed`;
  progress(line());
  const timer = setInterval(() => progress(line()), PROGRESS_EVERY_MS);
  try {
    for (const rel of hapiSourceFiles()) {
      fs.mkdirSync(path.dirname(path.join(scratch, rel)), { recursive: true });
      fs.copyFileSync(path.join(HAPI_SERVER_DIR, rel), path.join(scratch, rel));
    }
    const javaHome = path.dirname(path.dirname(fs.realpathSync(java)));
    const { status, output } = await run(mvn, ['-B', '-q', 'package'], scratch, { ...env, JAVA_HOME: javaHome });
    const built = path.join(scratch, 'target', JAR_NAME);
    if (status !== 0 || !fs.existsSync(built)) {
      throw new DevSetupError(
        'HAPI FHIR server',
        `mvn -B -q package failed (exit ${status}). Output:\n${output.trim()}`,
        'Maven must reach Maven Central (or find everything in ~/.m2 already); ' +
          'run `mvn -B package` in test/interop/hapi-server to see more',
      );
    }
    // Extracted (a thin launcher jar whose manifest lists lib/*.jar): loading classes from nested jars
    // costs a third of the fat jar's start-up CPU (measured: 19 s instead of 26 s of CPU to ready).
    const staged = fs.mkdtempSync(path.join(hapiCacheRoot(env), '.entry-'));
    const extracted = await run(
      java,
      ['-Djarmode=tools', '-jar', built, 'extract', '--destination', path.join(staged, 'app')],
      scratch,
      env,
    );
    if (extracted.status !== 0 || !fs.existsSync(path.join(staged, 'app', JAR_NAME))) {
      fs.rmSync(staged, { recursive: true, force: true });
      throw new DevSetupError(
        'HAPI FHIR server',
        `extracting ${JAR_NAME} failed (exit ${extracted.status}):\n${extracted.output.trim()}`,
      );
    }
    try {
      // An entry without its jar is a broken one (an interrupted copy by hand, say): replace it.
      if (fs.existsSync(entry) && !fs.existsSync(jar)) fs.rmSync(entry, { recursive: true, force: true });
      fs.renameSync(staged, entry);
    } catch (err) {
      // Another build finished first: its entry is as good as ours.
      fs.rmSync(staged, { recursive: true, force: true });
      if (!fs.existsSync(jar)) throw err;
    }
    const mb = Math.round(fs.statSync(built).size / 1e6);
    progress(`built the HAPI FHIR interop server in ${Math.round((Date.now() - started) / 1000)}s (${mb} MB) → ${jar}`);
    return jar;
  } finally {
    clearInterval(timer);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    let output = '';
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-6_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, output }));
  });
}

if (typeof require !== 'undefined' && typeof module !== 'undefined' && require.main === module) {
  ensureHapiJar({ onProgress: (l) => process.stderr.write(`${l}\n`) }).then(
    (jar) => process.stdout.write(`${jar}\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
