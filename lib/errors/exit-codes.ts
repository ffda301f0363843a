import { EhrError } from './index.js';

/**
 * Process exit codes shared by ehrctl and the worker, so scripts and supervisors can tell failures
 * apart: 0 ok; 1 failed; 2 bad usage or argument; 3 not found or already exists; 4 audit chain
 * broken; 69 a dependency (Temporal, PostgreSQL) unreachable (EX_UNAVAILABLE); 78 invalid
 * configuration (EX_CONFIG).
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notFoundOrConflict: 3,
  auditBroken: 4,
  unavailable: 69,
  config: 78,
} as const;

export function exitCodeForError(err: unknown): number {
  if (!(err instanceof EhrError)) return EXIT.failed;
  return exitCodeForCode(err.code);
}

/** The exit code for a stable error code (also one read back from a failed workflow's root cause). */
export function exitCodeForCode(code: string): number {
  switch (code) {
    case 'CONFIG_INVALID':
      return EXIT.config;
    case 'INFRASTRUCTURE_UNAVAILABLE':
      return EXIT.unavailable;
    case 'INVALID_ARGUMENT':
      return EXIT.usage;
    case 'NOT_FOUND':
    case 'CONFLICT':
      return EXIT.notFoundOrConflict;
    default:
      return EXIT.failed;
  }
}
