import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findFreePort, isPortFree, randomFreePort } from '../../dev/ports.js';
import { findOnPath, isPidAlive, spawnLogged, stopChild, waitForExit, waitForPidExit } from '../../dev/process.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-dev-proc-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ports', () => {
  it('prefers a free port and falls back when it is taken', async () => {
    const free = await randomFreePort();
    expect(await isPortFree(free)).toBe(true);
    expect(await findFreePort({ prefer: free })).toBe(free);

    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(free, '127.0.0.1', resolve));
    try {
      expect(await isPortFree(free)).toBe(false);
      const other = await findFreePort({ prefer: free });
      expect(other).not.toBe(free);
      expect(await isPortFree(other)).toBe(true);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('never returns a port listed in avoid', async () => {
    const a = await findFreePort();
    const b = await findFreePort({ prefer: a, avoid: [a] });
    expect(b).not.toBe(a);
  });
});

describe('process helpers', () => {
  it('spawns with output appended to a 0600 log file and reports the exit', async () => {
    const logFile = path.join(tmp, 'logs', 'echo.log');
    const { child, outputTail } = spawnLogged(
      process.execPath,
      ['-e', 'console.log("hello out"); console.error("hello err"); process.exit(3)'],
      { logFile },
    );
    expect(await waitForExit(child, 10_000)).toEqual({ code: 3, signal: null });
    expect(outputTail()).toContain('hello out');
    expect(outputTail()).toContain('hello err');
    expect(fs.statSync(logFile).mode & 0o777).toBe(0o600);
  });

  it('stopChild escalates to SIGKILL when SIGTERM is ignored', async () => {
    const { child } = spawnLogged(process.execPath, [
      '-e',
      'process.on("SIGTERM", () => {}); console.log("up"); setInterval(() => {}, 1000)',
    ]);
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    const pid = child.pid!;
    expect(isPidAlive(pid)).toBe(true);
    const status = await stopChild(child, 300);
    expect(status?.signal).toBe('SIGKILL');
    expect(await waitForPidExit(pid, 5_000)).toBe(true);
  });

  it('finds executables on PATH and reports dead pids as not alive', () => {
    expect(findOnPath('node', { PATH: path.dirname(process.execPath) })).toBe(process.execPath);
    expect(findOnPath('definitely-not-a-binary-xyz', { PATH: tmp })).toBeUndefined();
    expect(isPidAlive(process.pid)).toBe(true);
    expect(isPidAlive(0)).toBe(false);
    expect(isPidAlive(2 ** 22 + 12345)).toBe(false);
  });
});
