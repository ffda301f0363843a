/**
 * Which read strategy an integration uses and with what settings: the integration's own choice, else its
 * vendor profile's default. The nightly sync's plan names the result, so the workflow runs whichever it is.
 */
import type { ReadOptions, ReadStrategy } from '../domain.js';
import type { Integration } from '../integrations/repository.js';
import { profileFor } from '../vendors/profiles/index.js';
import type { ReadSupport } from '../vendors/profiles/types.js';

export interface EffectiveRead {
  strategy: ReadStrategy;
  /** Seconds incremental reads reach back before their checkpoint. */
  overlapSeconds: number;
  options: ReadOptions;
  support: ReadSupport;
}

export function readStrategyOf(
  integration: Pick<Integration, 'vendor' | 'readStrategy' | 'readOptions'>,
): EffectiveRead {
  const support = profileFor(integration.vendor).reads.value;
  return {
    strategy: integration.readStrategy ?? support.defaultStrategy,
    overlapSeconds: integration.readOptions.overlapSeconds ?? support.overlapSeconds,
    options: integration.readOptions,
    support,
  };
}
