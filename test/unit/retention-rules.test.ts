/**
 * Retention kinds and the record → data class mapping (lib/retention/rules.ts): every stored resource type is
 * kept by exactly one class's rule (its dominant class), `--class` and `--days` refuse what they cannot mean.
 */
import { describe, expect, it } from 'vitest';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { DATA_CLASSES } from '../../lib/fhir/data-classes.js';
import {
  DEFAULT_RETENTION_DAYS,
  RETENTION_KINDS,
  parseRetentionDays,
  parseRetentionKind,
  retentionClassOf,
  typesOfRetentionClass,
} from '../../lib/retention/rules.js';

describe('retention rules', () => {
  it('keeps every resource type by exactly one data class: its dominant class', () => {
    const covered = DATA_CLASSES.flatMap((c) => typesOfRetentionClass(c));
    expect([...covered].sort()).toEqual([...RESOURCE_TYPES].sort());
    expect(retentionClassOf('Patient')).toBe('demographics');
    expect(retentionClassOf('Observation')).toBe('labs-vitals');
    expect(retentionClassOf('Appointment')).toBe('scheduling');
    expect(retentionClassOf('Coverage')).toBe('billing');
  });

  it('has a default for every kind', () => {
    for (const kind of RETENTION_KINDS) expect(DEFAULT_RETENTION_DAYS[kind]).toBeGreaterThan(0);
    // The documented defaults (README, "Retention and legal holds").
    for (const c of DATA_CLASSES) expect(DEFAULT_RETENTION_DAYS[`records:${c}`]).toBe(c === 'scheduling' ? 730 : 2555);
    expect(DEFAULT_RETENTION_DAYS).toMatchObject({
      'webhook-deliveries': 90,
      evidence: 2190,
      exports: 30,
      audit: 2190,
    });
    expect(RETENTION_KINDS).toHaveLength(DATA_CLASSES.length + 4);
  });

  it('parses --class as a data class or another kind, and --days as 1..36500 whole days', () => {
    expect(parseRetentionKind('labs-vitals')).toBe('records:labs-vitals');
    expect(parseRetentionKind('records:billing')).toBe('records:billing');
    expect(parseRetentionKind('webhook-deliveries')).toBe('webhook-deliveries');
    expect(parseRetentionKind('audit')).toBe('audit');
    for (const bad of ['gossip', 'records:gossip', '', 'AUDIT']) {
      expect(() => parseRetentionKind(bad)).toThrow(InvalidArgumentError);
    }
    expect(parseRetentionDays('1')).toBe(1);
    expect(parseRetentionDays('36500')).toBe(36500);
    for (const bad of ['0', '36501', '-3', '1.5', '7d', '', '1e3']) {
      expect(() => parseRetentionDays(bad)).toThrow(InvalidArgumentError);
    }
  });
});
