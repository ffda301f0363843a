/**
 * Selects the KEK backend from configuration (EHR_KEK_PROVIDER): `local` (key files in EHR_KEK_DIR)
 * or `aws-kms` (EHR_AWS_KMS_KEY_ID in EHR_AWS_REGION, optional EHR_AWS_KMS_ENDPOINT; AWS credentials
 * from the SDK's default chain). A missing field is a ConfigError naming it.
 */
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors/index.js';
import { AwsKmsKekProvider } from './aws-kms-kek.js';
import type { AwsKmsKekOptions } from './aws-kms-kek.js';
import type { KekBackend } from './kek-provider.js';
import { LocalKekProvider } from './local-kek.js';

export type KekConfig = Pick<
  Config,
  'EHR_KEK_PROVIDER' | 'EHR_KEK_DIR' | 'EHR_AWS_KMS_KEY_ID' | 'EHR_AWS_REGION' | 'EHR_AWS_KMS_ENDPOINT'
>;

export async function createKekProvider(
  config: KekConfig,
  opts: { credentials?: AwsKmsKekOptions['credentials'] } = {},
): Promise<KekBackend> {
  switch (config.EHR_KEK_PROVIDER ?? 'local') {
    case 'local':
      if (!config.EHR_KEK_DIR) throw new ConfigError('EHR_KEK_DIR', 'is required for the local KEK provider');
      return LocalKekProvider.load(config.EHR_KEK_DIR);
    case 'aws-kms': {
      if (!config.EHR_AWS_KMS_KEY_ID)
        throw new ConfigError('EHR_AWS_KMS_KEY_ID', 'is required when EHR_KEK_PROVIDER=aws-kms');
      if (!config.EHR_AWS_REGION) throw new ConfigError('EHR_AWS_REGION', 'is required when EHR_KEK_PROVIDER=aws-kms');
      return new AwsKmsKekProvider({
        keyId: config.EHR_AWS_KMS_KEY_ID,
        region: config.EHR_AWS_REGION,
        ...(config.EHR_AWS_KMS_ENDPOINT ? { endpoint: config.EHR_AWS_KMS_ENDPOINT } : {}),
        ...(opts.credentials ? { credentials: opts.credentials } : {}),
      });
    }
    default:
      throw new ConfigError('EHR_KEK_PROVIDER', 'must be local or aws-kms');
  }
}
