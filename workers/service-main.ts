/**
 * A long-lived service as its process's entry point (the gateway, the webhook receiver): the one config schema,
 * a logger named for it, a clean stop on SIGTERM and SIGINT, and on a failure to start one line naming the service
 * (never a stack) and the exit code of its error.
 */
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { EhrError } from '../lib/errors/index.js';
import type { Logger } from '../lib/log/logger.js';
import { createLogger } from '../lib/log/logger.js';

export function runServiceMain(
  name: string,
  run: (config: Config, logger: Logger) => Promise<{ stop(): Promise<void> }>,
): void {
  const config = loadConfig();
  const logger = createLogger({ level: config.LOG_LEVEL, name });
  run(config, logger)
    .then(({ stop }) => {
      const onSignal = () => void stop().then(() => process.exit(0));
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    })
    .catch((err: unknown) => {
      const message =
        err instanceof EhrError ? err.message : `unexpected failure: ${(err as Error)?.message ?? String(err)}`;
      process.stderr.write(`${name}: ${message}\n`);
      process.exit(exitCodeForError(err));
    });
}
