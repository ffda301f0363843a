/**
 * The vendor profile registry: one profile per supported vendor, looked up by the integration's
 * `vendor` column. Adding a vendor means adding a profile file here (and, for quirks data cannot
 * express, a line in ./adapters.ts).
 */
import { InvalidArgumentError } from '../../errors/index.js';
import { athenahealth } from './athenahealth.js';
import { eclinicalworks } from './eclinicalworks.js';
import { epic } from './epic.js';
import { fhirServer } from './fhir-server.js';
import { meditech } from './meditech.js';
import { nextgen } from './nextgen.js';
import { oracleHealth } from './oracle-health.js';
import { sandbox } from './sandbox.js';
import { VENDOR_IDS, isVendorId, type VendorId, type VendorProfile } from './types.js';

export const PROFILES: Readonly<Record<VendorId, VendorProfile>> = {
  epic,
  'oracle-health': oracleHealth,
  athenahealth,
  meditech,
  eclinicalworks,
  nextgen,
  'fhir-server': fhirServer,
  sandbox,
};

export function profileFor(vendor: string): VendorProfile {
  if (!isVendorId(vendor))
    throw new InvalidArgumentError(
      'vendor',
      `unknown vendor ${JSON.stringify(vendor)}; known: ${VENDOR_IDS.join(', ')}`,
    );
  return PROFILES[vendor];
}

export type { VendorId, VendorProfile } from './types.js';
