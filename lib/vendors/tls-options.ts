/**
 * TLS toward vendors (DESIGN §4 invariants 5 and 11): per-integration trust (a CA bundle instead of,
 * or in addition to, the system roots), an optional client certificate for mutual TLS, TLS 1.2 as
 * the floor and certificate verification always on — there is deliberately no option to turn it off.
 *
 * Material arrives as secret references (`file:<absolute path>` or `env:VARNAME`); a private key file
 * readable by group or others is refused. Error messages name the field and the reference, never
 * the material. Each integration gets one keep-alive https.Agent, cached by integration id and
 * rebuilt when its material changes, used for the token request and every resource request alike.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { resolveSecret } from '../config/secrets.js';
import { ConfigError } from '../errors/index.js';

export type VendorTlsMinVersion = 'TLSv1.2' | 'TLSv1.3';

/** Resolved TLS material for one integration (PEM text, already read from its references). */
export interface VendorTls {
  /** CA certificate(s) to trust for this vendor. Without it, the system roots are used. */
  caPem?: string;
  /** With caPem: also trust the system roots (default false: trust only caPem). */
  includeSystemRoots?: boolean;
  /** Client certificate (chain) and its private key for mutual TLS; both or neither. */
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Floor for the negotiated version; anything below TLS 1.2 is refused. Default TLSv1.2. */
  minVersion?: VendorTlsMinVersion;
}

/** Where an integration's TLS material lives. Certificates are public; the key is a secret. */
export interface VendorTlsRefs {
  caRef?: string;
  clientCertRef?: string;
  clientKeyRef?: string;
  includeSystemRoots?: boolean;
  minVersion?: string;
}

const MIN_VERSIONS: readonly VendorTlsMinVersion[] = ['TLSv1.2', 'TLSv1.3'];

/** Certificates are public (shareable files); the client key is a secret (0600). */
function readRef(field: string, ref: string, secret: boolean): Promise<string> {
  return resolveSecret(ref, { field, shareable: !secret });
}

function pemBlocks(pem: string): string[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => `${b}\n`);
}

function certificates(field: string, where: string, pem: string): X509Certificate[] {
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) throw new ConfigError(field, `${where} holds no PEM certificate`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    throw new ConfigError(field, `${where} holds a certificate that cannot be parsed`);
  }
}

/**
 * Checks resolved material and returns it normalised. Refuses a client key without its certificate
 * (or the reverse), a key that does not match the certificate, and a version floor below TLS 1.2.
 * `where` names the references for messages; the PEMs themselves are never quoted.
 */
export function validateVendorTls(t: VendorTls, where: Partial<Record<'ca' | 'cert' | 'key', string>> = {}): VendorTls {
  const minVersion = t.minVersion ?? 'TLSv1.2';
  if (!(MIN_VERSIONS as readonly string[]).includes(minVersion)) {
    throw new ConfigError('tls.minVersion', 'must be TLSv1.2 or TLSv1.3; older protocol versions are refused');
  }
  if (t.caPem !== undefined) certificates('tls.caRef', where.ca ?? 'the CA bundle', t.caPem);
  if ((t.clientCertPem === undefined) !== (t.clientKeyPem === undefined)) {
    throw new ConfigError('tls.clientCertRef', 'a client certificate and its private key must be configured together');
  }
  if (t.clientCertPem !== undefined && t.clientKeyPem !== undefined) {
    const [leaf] = certificates('tls.clientCertRef', where.cert ?? 'the client certificate', t.clientCertPem);
    let key;
    try {
      key = createPrivateKey(t.clientKeyPem);
    } catch {
      // Never echo the parser's message: it can quote the input.
      throw new ConfigError('tls.clientKeyRef', `${where.key ?? 'the client key'} does not hold a PEM private key`);
    }
    if (!leaf!.checkPrivateKey(key)) {
      throw new ConfigError(
        'tls.clientKeyRef',
        `${where.key ?? 'the client key'} does not match the client certificate`,
      );
    }
  }
  return { ...t, minVersion };
}

/** Reads an integration's TLS references into validated PEMs. */
export async function loadVendorTls(refs: VendorTlsRefs): Promise<VendorTls> {
  const out: VendorTls = {};
  if (refs.caRef !== undefined) out.caPem = await readRef('tls.caRef', refs.caRef, false);
  if (refs.clientCertRef !== undefined)
    out.clientCertPem = await readRef('tls.clientCertRef', refs.clientCertRef, false);
  if (refs.clientKeyRef !== undefined) out.clientKeyPem = await readRef('tls.clientKeyRef', refs.clientKeyRef, true);
  if (refs.includeSystemRoots !== undefined) out.includeSystemRoots = refs.includeSystemRoots;
  if (refs.minVersion !== undefined) out.minVersion = refs.minVersion as VendorTlsMinVersion;
  return validateVendorTls(out, { ca: refs.caRef, cert: refs.clientCertRef, key: refs.clientKeyRef });
}

/** Agent options: verification on, TLS 1.2 floor, the integration's trust and client identity. */
export function agentOptions(t: VendorTls | undefined): https.AgentOptions {
  const v = validateVendorTls(t ?? {});
  return {
    keepAlive: true,
    maxSockets: 16,
    minVersion: v.minVersion,
    rejectUnauthorized: true, // explicit: NODE_TLS_REJECT_UNAUTHORIZED=0 cannot switch verification off
    ...(v.caPem !== undefined
      ? { ca: [...(v.includeSystemRoots ? tls.rootCertificates : []), ...pemBlocks(v.caPem)] }
      : {}),
    ...(v.clientCertPem !== undefined ? { cert: v.clientCertPem, key: v.clientKeyPem } : {}),
  };
}

function fingerprint(t: VendorTls | undefined): string {
  const h = createHash('sha256');
  for (const part of [
    t?.caPem,
    String(t?.includeSystemRoots ?? false),
    t?.clientCertPem,
    t?.clientKeyPem,
    t?.minVersion ?? 'TLSv1.2',
  ]) {
    h.update(part ?? '\0').update('\x1f');
  }
  return h.digest('base64url');
}

/** One https.Agent per integration, rebuilt when the integration's TLS material changes. */
export class VendorAgents {
  private readonly agents = new Map<string, { agent: https.Agent; fingerprint: string }>();

  agentFor(integrationId: string, t: VendorTls | undefined): https.Agent {
    const fp = fingerprint(t);
    const cached = this.agents.get(integrationId);
    if (cached?.fingerprint === fp) return cached.agent;
    const agent = new https.Agent(agentOptions(t));
    cached?.agent.destroy();
    this.agents.set(integrationId, { agent, fingerprint: fp });
    return agent;
  }

  /** Closes an integration's pooled connections (revocation, suspension, rotated material). */
  forget(integrationId: string): void {
    this.agents.get(integrationId)?.agent.destroy();
    this.agents.delete(integrationId);
  }

  closeAll(): void {
    for (const id of [...this.agents.keys()]) this.forget(id);
  }
}

export interface HttpsExchange {
  method: string;
  headers: Record<string, string>;
  body?: string;
  agent: https.Agent;
  signal: AbortSignal;
}

const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * One https exchange through an integration's agent, answered as a WHATWG Response whose body
 * streams (so the caller's size cap applies while reading). Redirects are not followed. When the
 * signal fires, the request or the body stream fails with the signal's reason (a TimeoutError).
 */
export function httpsExchange(url: URL, x: HttpsExchange): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    let response: IncomingMessage | undefined;
    const onAbort = (): void => {
      const reason: unknown = x.signal.reason;
      const err = reason instanceof Error ? reason : new Error('aborted');
      response?.destroy(err);
      req.destroy(err);
    };
    const req = https.request(url, { method: x.method, headers: x.headers, agent: x.agent }, (res) => {
      response = res;
      res.once('close', () => x.signal.removeEventListener('abort', onAbort));
      const headers = new Headers();
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        res.destroy();
        reject(new Error(`unexpected status ${status}`));
        return;
      }
      let body: ReadableStream | null = null;
      if (NULL_BODY_STATUSES.has(status)) res.resume();
      else body = Readable.toWeb(res) as unknown as ReadableStream;
      resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers }));
    });
    req.once('error', (err) => {
      x.signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    if (x.signal.aborted) return onAbort();
    x.signal.addEventListener('abort', onAbort, { once: true });
    req.end(x.body);
  });
}

/** OpenSSL handshake and certificate-verification failures as Node reports them in `err.code`. */
const VERIFY_CODES =
  /^(?:ERR_SSL_|ERR_TLS_)|CERT|^UNABLE_TO_|^INVALID_CA$|^PATH_LENGTH_EXCEEDED$|^INVALID_PURPOSE$|^HOSTNAME_MISMATCH$/;
/** A protocol-version alert can surface as a plain EPROTO from the socket write; its message says which. */
const VERSION_MESSAGE = /alert protocol version|unsupported protocol|wrong version number/i;

/**
 * The code of a TLS failure (handshake, certificate verification, protocol version), or undefined
 * for anything else. Only the code is returned: messages can quote certificate subjects.
 */
export function tlsFailureCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EPROTO')
    return err instanceof Error && VERSION_MESSAGE.test(err.message) ? 'TLS_PROTOCOL_VERSION' : 'EPROTO';
  return typeof code === 'string' && VERIFY_CODES.test(code) ? code : undefined;
}
