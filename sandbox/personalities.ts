/**
 * Vendor personalities: the sandbox impersonates one EHR vendor's public behaviour (DESIGN §6 and the
 * product's lib/vendors/profiles). The sandbox may not import the product's profiles, so each
 * personality is described here as the sandbox's own data; where a vendor publishes nothing, the
 * value is a plausible choice so the connector meets a realistic variety.
 */
export const PERSONALITY_IDS = [
  'standard',
  'epic',
  'oracle-health',
  'athenahealth',
  'meditech',
  'eclinicalworks',
  'nextgen',
] as const;
export type PersonalityId = (typeof PERSONALITY_IDS)[number];

export function isPersonalityId(value: string): value is PersonalityId {
  return (PERSONALITY_IDS as readonly string[]).includes(value);
}

export const CLIENT_AUTH_METHODS = [
  'private_key_jwt',
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

export interface RateLimitSpec {
  requests: number;
  windowMs: number;
  /** 'fixed': a 429 for the rest of the window, no Retry-After (eCW); 'sliding': Retry-After until a slot frees. */
  window: 'fixed' | 'sliding';
}

export interface ExtraParameterSpec {
  in: 'query' | 'header';
  /** Query parameter or header name (headers compared lowercase). */
  key: string;
}

export interface Personality {
  id: PersonalityId;
  /** Client authentication methods accepted at the token endpoint; null accepts every method. */
  authMethods: readonly ClientAuthMethod[] | null;
  tokenTtlSeconds: number;
  /** Scope syntaxes accepted in token requests: v1 `.read`, v2 `.rs`. */
  scopeSyntax: ReadonlyArray<'v1' | 'v2'>;
  /** 'next-link': keyset cursor links; 'offset': `_getpagesoffset=` links. */
  paging: 'next-link' | 'offset';
  /** FHIR base path, e.g. `/api/FHIR/R4` (no trailing slash). */
  basePath: string;
  rateLimit: RateLimitSpec | null;
  /** Required on every FHIR request (not discovery, not metadata); missing → 400 OperationOutcome. */
  requiredParameters: readonly ExtraParameterSpec[];
}

const ALL_SCOPE_SYNTAXES = ['v1', 'v2'] as const;

export const PERSONALITIES: Readonly<Record<PersonalityId, Personality>> = {
  // Today's sandbox: every auth method, both scope syntaxes, keyset paging, no limit.
  standard: {
    id: 'standard',
    authMethods: null,
    tokenTtlSeconds: 300,
    scopeSyntax: ALL_SCOPE_SYNTAXES,
    paging: 'next-link',
    basePath: '/fhir',
    rateLimit: null,
    requiredParameters: [],
  },
  epic: {
    id: 'epic',
    authMethods: ['private_key_jwt'],
    tokenTtlSeconds: 3600,
    scopeSyntax: ['v1'],
    paging: 'next-link',
    basePath: '/api/FHIR/R4',
    rateLimit: null,
    requiredParameters: [],
  },
  'oracle-health': {
    id: 'oracle-health',
    authMethods: ['client_secret_basic'],
    tokenTtlSeconds: 570,
    scopeSyntax: ['v1'],
    paging: 'next-link',
    basePath: '/r4/0b8a0111-e8e6-4c26-a91c-5069cbc6b1ca',
    rateLimit: null,
    requiredParameters: [],
  },
  athenahealth: {
    id: 'athenahealth',
    authMethods: ['private_key_jwt', 'client_secret_basic'],
    tokenTtlSeconds: 3600,
    scopeSyntax: ['v2'],
    paging: 'offset',
    basePath: '/fhir/r4',
    rateLimit: { requests: 10, windowMs: 1000, window: 'sliding' },
    requiredParameters: [{ in: 'query', key: 'ah-practice' }],
  },
  meditech: {
    id: 'meditech',
    authMethods: ['private_key_jwt', 'client_secret_basic'],
    tokenTtlSeconds: 300,
    scopeSyntax: ['v2'],
    paging: 'next-link',
    basePath: '/v2/uscore/STU6',
    rateLimit: null,
    requiredParameters: [],
  },
  eclinicalworks: {
    id: 'eclinicalworks',
    authMethods: ['private_key_jwt'],
    tokenTtlSeconds: 300,
    scopeSyntax: ['v1'],
    paging: 'next-link',
    basePath: '/fhir/r4/SBXPRAC',
    rateLimit: { requests: 250, windowMs: 60_000, window: 'fixed' },
    requiredParameters: [],
  },
  nextgen: {
    id: 'nextgen',
    authMethods: ['client_secret_post'],
    tokenTtlSeconds: 3600,
    scopeSyntax: ['v1'],
    paging: 'offset',
    basePath: '/nge/prod/fhir-api-r4/fhir/R4',
    rateLimit: null,
    requiredParameters: [{ in: 'header', key: 'x-ng-siteid' }],
  },
};

/**
 * Which client authentication method a token request uses, read from its shape alone (verification
 * is smart.ts's job): a Basic header, a secret in the form, an assertion, or only a client_id (the
 * TLS client certificate authenticates). undefined: no recognisable client authentication.
 */
export function clientAuthMethodOf(
  authorization: string | undefined,
  form: URLSearchParams,
): ClientAuthMethod | undefined {
  if (/^Basic\s/i.test(authorization ?? '')) return 'client_secret_basic';
  if (form.has('client_assertion') || form.has('client_assertion_type')) return 'private_key_jwt';
  if (form.has('client_secret')) return 'client_secret_post';
  if (form.has('client_id')) return 'tls_client_auth';
  return undefined;
}

/** Scope syntax of one scope string: `.read`/`.write`/`.*` is v1, `.rs`-style letters are v2. */
export function scopeSyntaxOf(scope: string): 'v1' | 'v2' | undefined {
  const m = /^(?:system|user|patient)\/[A-Za-z*]+\.([A-Za-z*]+)$/.exec(scope);
  if (!m) return undefined;
  const access = m[1] as string;
  if (access === 'read' || access === 'write' || access === '*') return 'v1';
  if (/^c?r?u?d?s?$/.test(access)) return 'v2';
  return undefined;
}

/** The name of the first required parameter the request lacks, or undefined. */
export function missingRequiredParameter(
  p: Personality,
  query: Record<string, unknown>,
  headers: Record<string, unknown>,
): string | undefined {
  for (const param of p.requiredParameters) {
    const value = param.in === 'query' ? query[param.key] : headers[param.key.toLowerCase()];
    if (typeof value !== 'string' || value.length === 0) return param.key;
  }
  return undefined;
}
