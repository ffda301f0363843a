import { EhrError } from '../lib/errors/index.js';

/**
 * A part of the embedded dev stack or test harness could not be found, built or started. The message
 * says what failed and why, and — when there is one — how to fix it (`fix`), so a newcomer never
 * has to read the source to get going.
 */
export class DevSetupError extends EhrError {
  readonly code = 'DEV_SETUP_FAILED';
  readonly retryable = false;
  constructor(
    readonly component: string,
    readonly detail: string,
    readonly fix?: string,
  ) {
    super(`${component}: ${detail}${fix ? `\n  fix: ${fix}` : ''}`);
  }
}
