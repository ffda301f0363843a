import { Runtime } from '@temporalio/worker';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/worker';
import type { Logger } from '../lib/log/logger.js';

/**
 * Routes the Temporal SDK's logs (worker, workflow sandbox, activities, core) into pino so they get
 * the same redaction as ours. Must run before any connection or worker exists.
 */
export function installTemporalLogging(logger: Logger): void {
  const sdk = logger.child({ component: 'temporal-sdk' });
  const adapter: TemporalLogger = {
    log: (level: LogLevel, message: string, meta?: LogMetadata) => {
      const method = level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      sdk[method](meta ?? {}, message);
    },
    trace: (message, meta) => sdk.trace(meta ?? {}, message),
    debug: (message, meta) => sdk.debug(meta ?? {}, message),
    info: (message, meta) => sdk.info(meta ?? {}, message),
    warn: (message, meta) => sdk.warn(meta ?? {}, message),
    error: (message, meta) => sdk.error(meta ?? {}, message),
  };
  // SIGINT/SIGTERM make running workers drain in-flight tasks, then worker.run() resolves.
  Runtime.install({ logger: adapter, shutdownSignals: ['SIGINT', 'SIGTERM'] });
}
