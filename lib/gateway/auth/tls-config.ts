/** The gateway's HTTPS certificate and key from config (by reference); none: plain HTTP behind an ingress. */
import type { Config } from '../../config/schema.js';
import { resolveSecret } from '../../config/secrets.js';
import { ConfigError } from '../../errors/index.js';

export async function gatewayTlsFromConfig(
  config: Pick<Config, 'GATEWAY_TLS_CERT' | 'GATEWAY_TLS_KEY'>,
): Promise<{ certPem: string; keyPem: string } | undefined> {
  if (!config.GATEWAY_TLS_CERT && !config.GATEWAY_TLS_KEY) return undefined;
  if (!config.GATEWAY_TLS_CERT) throw new ConfigError('GATEWAY_TLS_CERT', 'is required with GATEWAY_TLS_KEY');
  if (!config.GATEWAY_TLS_KEY) throw new ConfigError('GATEWAY_TLS_KEY', 'is required with GATEWAY_TLS_CERT');
  return {
    certPem: await resolveSecret(config.GATEWAY_TLS_CERT, { field: 'GATEWAY_TLS_CERT', shareable: true }),
    keyPem: await resolveSecret(config.GATEWAY_TLS_KEY, { field: 'GATEWAY_TLS_KEY' }),
  };
}
