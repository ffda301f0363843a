/**
 * pino with redaction. Loggers are constructed only by process entry points (workers/, client/);
 * library code receives a Logger. Redaction covers every field name that can carry a secret;
 * PHI never reaches a log call in the first place (we log ids, counts and codes only).
 */
import pino from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export const redactedPaths = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'access_token',
  '*.access_token',
  'accessToken',
  '*.accessToken',
  'client_assertion',
  '*.client_assertion',
  'privateKey',
  '*.privateKey',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'databaseUrl',
  '*.databaseUrl',
  'DATABASE_URL',
  '*.DATABASE_URL',
];

export function createLogger(options: { level: string; name: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    { level: options.level, name: options.name, redact: { paths: redactedPaths, censor: '[redacted]' }, base: { pid: process.pid } },
    options.destination ?? pino.destination(2),
  );
}
