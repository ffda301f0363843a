/**
 * Where `--decode` reaches the codec server, for every command that decodes through it: the caller's token
 * (`--token` or EHR_CODEC_TOKEN), the server (`--codec-url`, EHR_CODEC_URL or the dev stack) and an extra CA to trust
 * (`--codec-ca`, EHR_CODEC_CA or the dev CA). Keys are never loaded here: the server decides and audits.
 */
import fs from 'node:fs';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import type { CliContext } from '../context.js';

export interface CodecOptions {
  token?: string;
  codecUrl?: string;
  codecCa?: string;
}

export function codecServerAccess(
  ctx: CliContext,
  opts: CodecOptions,
): { url: string; token: string; caPem: string | undefined } {
  const token = opts.token ?? process.env.EHR_CODEC_TOKEN;
  if (!token)
    throw new InvalidArgumentError(
      '--token',
      'is required with --decode (or set EHR_CODEC_TOKEN; on a dev stack: ehrctl dev token)',
    );
  const url = opts.codecUrl ?? ctx.stack('EHR_CODEC_URL');
  if (!url)
    throw new InvalidArgumentError(
      '--codec-url',
      'is required with --decode (or set EHR_CODEC_URL, or run the dev stack)',
    );
  const caFile = opts.codecCa ?? ctx.stack('EHR_CODEC_CA');
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = fs.readFileSync(caFile, 'utf8');
    } catch {
      throw new InvalidArgumentError('--codec-ca', `${caFile} cannot be read`);
    }
  }
  return { url, token, caPem };
}
