/**
 * The dev stack daemon's lock (stack.lock holds its pid): one daemon per data directory. Taken before
 * anything starts and released after everything stopped; a lock left by a dead daemon is taken over.
 * Readers (`dev status`, `dev up`) use readLockPid in stack-files.ts, which stays light for every ehrctl call.
 */
import fs from 'node:fs';
import { DevSetupError } from './errors.js';
import { isPidAlive } from './process.js';
import type { StackPaths } from './stack-files.js';

export function acquireLock(paths: StackPaths): void {
  fs.mkdirSync(paths.dataDir, { recursive: true, mode: 0o755 });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(paths.lockFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(fs.readFileSync(paths.lockFile, 'utf8').trim());
      if (isPidAlive(holder) && holder !== process.pid) {
        throw new DevSetupError('dev stack', `another dev stack daemon (pid ${holder}) holds ${paths.lockFile}`);
      }
      fs.rmSync(paths.lockFile, { force: true });
    }
  }
  throw new DevSetupError('dev stack', `could not take ${paths.lockFile}`);
}

/** Removes the lock if this process holds it. */
export function releaseLock(paths: StackPaths): void {
  try {
    if (Number(fs.readFileSync(paths.lockFile, 'utf8').trim()) === process.pid)
      fs.rmSync(paths.lockFile, { force: true });
  } catch {
    // not ours or already gone
  }
}
