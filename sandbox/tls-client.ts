/**
 * A tiny https client for tests and the demo talking to a TLS sandbox with a private CA (global fetch
 * cannot be given a CA without undici's Agent). Buffers the whole body; verification is always on.
 */
import https from 'node:https';

export interface ClientTls {
  /** CA that signed the sandbox's server certificate. */
  caPem: string;
  /** Client certificate and key, for a sandbox that requires mutual TLS. */
  certPem?: string;
  keyPem?: string;
}

export function tlsFetch(
  url: string,
  tls: ClientTls,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: init.method ?? 'GET',
        headers: init.headers ?? {},
        ca: tls.caPem,
        ...(tls.certPem ? { cert: tls.certPem, key: tls.keyPem } : {}),
        minVersion: 'TLSv1.2',
        rejectUnauthorized: true,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => {
          const headers = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
            headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 500;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers }));
        });
      },
    );
    req.once('error', reject);
    req.end(init.body);
  });
}
