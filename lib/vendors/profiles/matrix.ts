/**
 * The vendor integration matrix, rendered from the profiles: one row per vendor with every
 * capability and its confidence, the compensating controls per weakness, and the sources.
 * `ehrctl vendors matrix` prints it; docs/vendor-matrix.md is its markdown output, kept in step
 * by test/unit/vendor-matrix.test.ts.
 */
import { compensatingControls, factEntries, recommendedSettings } from './compensating.js';
import type { BulkSupport, ExtraParameter, Fact, RateLimit, VendorProfile } from './types.js';
import type { WriteSupport } from './writes.js';
import { WRITE_SUPPORT } from './writes.js';

export const REGENERATE_MATRIX_COMMAND = 'npx ehrctl vendors matrix --format md > docs/vendor-matrix.md';

const cell = <T>(f: Fact<T>, format: (v: T) => string = String): string => `${format(f.value)} (${f.confidence})`;
const list = (values: readonly string[]): string => (values.length === 0 ? '-' : values.join(', '));

export function formatTokenLifetime(seconds: number | null): string {
  if (seconds === null) return 'unpublished';
  return seconds % 60 === 0 ? `${seconds / 60} min` : `${seconds} s`;
}

export function formatBulk(b: BulkSupport): string {
  if (!b.supported) return 'no';
  return `${b.version ? `v${b.version} ` : ''}${list(b.levels)}${b.incremental ? ', _since' : ', not incremental'}`;
}

export function formatRateLimit(r: RateLimit | null): string {
  if (!r) return 'none published';
  const per = r.perSeconds === 1 ? 's' : r.perSeconds === 60 ? 'min' : `${r.perSeconds} s`;
  return `${r.requests}/${per} per ${r.scope}, ${r.window} window${r.retryAfter ? '' : ', no Retry-After'}`;
}

export function formatExtraParameters(params: ExtraParameter[]): string {
  return list(params.map((p) => `${p.name} → ${p.in} ${p.key}${p.required ? '' : ' (optional)'}`));
}

/** The write guards a vendor honours (lib/vendors/profiles/writes.ts). */
export function formatWrites(w: WriteSupport): string {
  const guards = [
    ...(w.ifMatch ? ['If-Match'] : []),
    ...(w.conditionalCreate ? ['If-None-Exist'] : []),
    ...(w.idempotencyKey ? ['Idempotency-Key'] : []),
  ];
  return list(guards);
}

/** One matrix row per vendor; every cell is `value (confidence)`. */
export function matrixRow(p: VendorProfile): Record<string, string> {
  return {
    vendor: p.id,
    fhir: cell(p.fhirVersion),
    auth: cell(p.auth.methods, list),
    algorithms: cell(p.auth.algorithms, list),
    keys: cell(p.auth.jwks),
    'assertion aud': cell(p.auth.assertionAudience),
    'token lifetime': cell(p.tokens.lifetimeSeconds, formatTokenLifetime),
    refresh: cell(p.tokens.refresh),
    scopes: `${cell(p.scopes.syntax)}, ${cell(p.scopes.granularity)}`,
    paging: cell(p.paging),
    bulk: cell(p.bulk, formatBulk),
    push: cell(p.push),
    'rate limit': cell(p.rateLimit, formatRateLimit),
    'extra parameters': cell(p.extraParameters, formatExtraParameters),
    writes: cell(WRITE_SUPPORT[p.id], formatWrites),
    sandbox: cell(p.sandbox),
    controls: list(compensatingControls(p).map((c) => c.weakness)),
  };
}

/** Everything the matrix says about a vendor, as data (`--format json`). */
export function matrixEntry(p: VendorProfile) {
  return { profile: p, compensatingControls: compensatingControls(p), recommendedSettings: recommendedSettings(p) };
}

const escapeMd = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function mdTable(rows: Array<Record<string, string | number>>): string[] {
  const headers = Object.keys(rows[0] ?? {});
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${headers.map((h) => escapeMd(String(r[h] ?? ''))).join(' | ')} |`),
  ];
}

/** docs/vendor-matrix.md: deterministic (no dates), so a stale committed copy is caught by a test. */
export function renderMatrixMarkdown(profiles: readonly VendorProfile[]): string {
  const lines: string[] = [
    '# Vendor integration matrix',
    '',
    `Generated from lib/vendors/profiles/ by \`${REGENERATE_MATRIX_COMMAND}\`; do not edit by hand.`,
    'Each value carries its confidence: **H** the vendor’s own documentation, **M** a third party,',
    '**L** unverified or a connector default. Facts of confidence L are verified at registration and in',
    'the conformance run. `ehrctl vendors show <id>` prints one vendor with every source.',
    '',
    '## Capabilities',
    '',
    ...mdTable(profiles.map(matrixRow)),
    '',
    '## Compensating controls',
    '',
    'Where a vendor is weak, the connector tightens its own settings (lib/vendors/profiles/compensating.ts).',
    '',
    ...mdTable(
      profiles.flatMap((p) =>
        compensatingControls(p).map((c) => ({
          vendor: p.id,
          weakness: c.weakness,
          finding: c.finding,
          control: c.control,
          setting: c.setting,
        })),
      ),
    ),
    '',
    '## Recommended settings',
    '',
    ...mdTable(
      profiles.map((p) => {
        const s = recommendedSettings(p);
        return {
          vendor: p.id,
          'sync interval': `${s.syncIntervalHours} h`,
          'audit retention': `${s.auditRetentionDays} days`,
          'field minimisation': s.fieldMinimisation,
          'secret rotation': s.secretRotationDays === null ? 'n/a (key-based)' : `${s.secretRotationDays} days`,
        };
      }),
    ),
    '',
    '## Sources',
  ];
  for (const p of profiles) {
    lines.push(
      '',
      `### ${p.name} (\`${p.id}\`)`,
      '',
      ...mdTable(
        [...factEntries(p), ['writes', WRITE_SUPPORT[p.id]] as const].map(([path, f]) => ({
          fact: path,
          confidence: f.confidence,
          source: f.source,
        })),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}
