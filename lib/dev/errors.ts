import { EhrError } from '../errors/index.js';

/** A part of the embedded dev stack or test harness could not be found, built or started. */
export class DevSetupError extends EhrError {
  readonly code = 'DEV_SETUP_FAILED';
  readonly retryable = false;
  constructor(readonly component: string, readonly detail: string) {
    super(`${component}: ${detail}`);
  }
}
