/**
 * The gateway's SMART configuration (`/.well-known/smart-configuration`, SMART App Launch 2.x §Discovery):
 * what a Backend Services client needs — the token endpoint, `private_key_jwt` with RS384/ES384, the
 * client_credentials grant and SMART v2 system scopes. Nothing about consumers or tenants.
 */
import { RESOURCE_TYPES } from '../../domain.js';
import { ASSERTION_ALGS } from './token-endpoint.js';

export function smartConfiguration(publicUrl: string): Record<string, unknown> {
  return {
    issuer: publicUrl,
    token_endpoint: `${publicUrl}/auth/token`,
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGS],
    grant_types_supported: ['client_credentials'],
    scopes_supported: ['system/*.rs', ...RESOURCE_TYPES.map((t) => `system/${t}.rs`)],
    capabilities: ['client-confidential-asymmetric', 'permission-v2'],
  };
}
