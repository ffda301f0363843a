import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { parseScope, scopeCovers } from '../../lib/incidents/scope.js';

describe('incident scopes', () => {
  it('parses the four forms and refuses anything else', () => {
    for (const s of ['all', 'tenant:t-1', 'integration:i-1', 'vendor:epic']) expect(parseScope(s)).toBe(s);
    for (const s of ['', 'tenant:', 'tenant:T One', 'patient:p-1', "tenant:x' OR 1=1", 'ALL'])
      expect(() => parseScope(s)).toThrow(InvalidArgumentError);
  });

  it('covers an integration by its own id, its tenant or its vendor, and nothing else', () => {
    const target = { tenantId: 't-1', integrationId: 'i-1', vendor: 'epic' };
    for (const s of ['all', 'tenant:t-1', 'integration:i-1', 'vendor:epic']) expect(scopeCovers(s, target)).toBe(true);
    for (const s of ['tenant:t-2', 'integration:i-2', 'vendor:cerner', 'tenant:i-1'])
      expect(scopeCovers(s, target)).toBe(false);
    // A tenant-level question (no integration) is covered only by 'all' or the tenant itself.
    expect(scopeCovers('vendor:epic', { tenantId: 't-1' })).toBe(false);
  });
});
