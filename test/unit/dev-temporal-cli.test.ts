import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors/index.js';
import { DevSetupError } from '../../dev/errors.js';
import {
  isSupportedCliVersion,
  parseTemporalCliVersion,
  resolveTemporalCli,
  temporalCliCachePath,
  TEMPORAL_CLI_VERSION,
} from '../../dev/temporal-cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
/** A directory holding one executable shell script. PATH holds only such directories: no real go or temporal. */
function fakeBin(name: string, script: string): string {
  const dir = path.join(tmp, `bin${++n}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  return dir;
}

function freshCache(): string {
  return fs.mkdtempSync(path.join(tmp, 'cache-'));
}

describe('resolveTemporalCli', () => {
  it('uses TEMPORAL_CLI first and refuses one that is not an executable file', async () => {
    const dir = fakeBin('my-temporal', 'echo temporal version 1.5.1');
    const onPath = fakeBin('temporal', 'echo temporal version 1.5.1');
    const env = { TEMPORAL_CLI: path.join(dir, 'my-temporal'), PATH: onPath, XDG_CACHE_HOME: freshCache() };
    expect(await resolveTemporalCli({ env })).toBe(path.join(dir, 'my-temporal'));

    const missing = resolveTemporalCli({ env: { ...env, TEMPORAL_CLI: path.join(tmp, 'nope') } });
    await expect(missing).rejects.toBeInstanceOf(ConfigError);
    await expect(missing).rejects.toThrow(/TEMPORAL_CLI: .*nope does not exist or is not an executable file/);
  });

  it('takes `temporal` on PATH next, even an older one (with a warning)', async () => {
    const onPath = fakeBin('temporal', 'echo "temporal version 1.1.0 (Server 1.25.0, UI 2.30.0)"');
    const lines: string[] = [];
    const found = await resolveTemporalCli({
      env: { PATH: onPath, XDG_CACHE_HOME: freshCache() },
      onProgress: (l) => lines.push(l),
    });
    expect(found).toBe(path.join(onPath, 'temporal'));
    expect(lines.join('\n')).toMatch(/1\.1\.0/);
  });

  it('then the per-user cache keyed by version', async () => {
    const cache = freshCache();
    const cached = temporalCliCachePath({ XDG_CACHE_HOME: cache });
    expect(cached).toBe(path.join(cache, 'ehr-connectors', 'temporal-cli', TEMPORAL_CLI_VERSION, 'temporal'));
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.writeFileSync(cached, '#!/bin/sh\n', { mode: 0o755 });
    expect(await resolveTemporalCli({ env: { PATH: fakeBin('unrelated', 'true'), XDG_CACHE_HOME: cache } })).toBe(
      cached,
    );
  });

  it('then builds with go install into the cache (atomic rename, progress lines)', async () => {
    const cache = freshCache();
    const go = fakeBin(
      'go',
      [
        'echo "$@" > "$GOBIN/args"',
        'printf "#!/bin/sh\\necho temporal version 0.0.0-DEV\\n" > "$GOBIN/temporal"',
        '/bin/chmod 755 "$GOBIN/temporal"',
      ].join('\n'),
    );
    const lines: string[] = [];
    const built = await resolveTemporalCli({
      env: { PATH: go, XDG_CACHE_HOME: cache },
      onProgress: (l) => lines.push(l),
    });
    expect(built).toBe(temporalCliCachePath({ XDG_CACHE_HOME: cache }));
    expect(fs.statSync(built).mode & 0o111).not.toBe(0);
    expect(lines[0]).toMatch(/^building Temporal CLI v1\.5\.1 with go install \(first build takes a few minutes\)…/);
    // The temporary GOBIN is gone; only the version directory remains.
    expect(fs.readdirSync(path.join(cache, 'ehr-connectors', 'temporal-cli'))).toEqual([TEMPORAL_CLI_VERSION]);
  });

  it('reports a failed go install with its output', async () => {
    const go = fakeBin('go', 'echo "go: module lookup disabled" >&2; exit 1');
    await expect(resolveTemporalCli({ env: { PATH: go, XDG_CACHE_HOME: freshCache() } })).rejects.toThrow(
      /module lookup disabled/,
    );
  });

  it('without Go, says how to install Go or set TEMPORAL_CLI', async () => {
    const attempt = resolveTemporalCli({ env: { PATH: fakeBin('unrelated', 'true'), XDG_CACHE_HOME: freshCache() } });
    await expect(attempt).rejects.toBeInstanceOf(DevSetupError);
    await expect(attempt).rejects.toThrow(/Install Go .*TEMPORAL_CLI=/s);
  });
});

describe('CLI versions', () => {
  it('parses `temporal --version` and accepts 1.5+ and source builds', () => {
    expect(parseTemporalCliVersion('temporal version 1.5.1 (Server 1.29.1, UI 2.42.1)')).toBe('1.5.1');
    expect(parseTemporalCliVersion('temporal version 0.0.0-DEV (Server 1.29.1, UI 2.42.1)')).toBe('0.0.0-DEV');
    expect(isSupportedCliVersion('1.5.1')).toBe(true);
    expect(isSupportedCliVersion('1.6.0')).toBe(true);
    expect(isSupportedCliVersion('2.0.0')).toBe(true);
    expect(isSupportedCliVersion('0.0.0-DEV')).toBe(true);
    expect(isSupportedCliVersion('1.4.9')).toBe(false);
    expect(isSupportedCliVersion('0.13.2')).toBe(false);
  });
});
