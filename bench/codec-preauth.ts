/**
 * `npx tsx bench/codec-preauth.ts` — what large POSTs cost the codec server before it knows who sent
 * them: its resident memory (RSS, after a GC) before and after 8 concurrent 15 MiB POSTs without
 * credentials, beside the same 8 POSTs from an authorised caller (the floor from the same run: bodies
 * the server must read), and how much of each body it took in before answering. The server runs in a
 * child process (so the RSS is its own) with a pass-through codec and an in-memory audit. An optional
 * argument names another server module with the same `startCodecServer` (e.g. an older version).
 * Figures, not pass/fail.
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PayloadCodec } from '@temporalio/common';
import { SignJWT } from 'jose';
import type { CodecServerConfig, CodecServerDeps, CodecServerHandle } from '../workers/codec-server.js';
import { createCertificateAuthority, issueCertificate } from '../lib/crypto/tls-certs.js';

const POSTS = 8;
const BODY_BYTES = 15 * 1024 * 1024;
const MIB = 1024 * 1024;

interface Ready {
  url: string;
  caPem: string;
  token: string;
}

async function serve(modulePath: string): Promise<void> {
  const mod = (await import(modulePath)) as {
    startCodecServer(c: CodecServerConfig, d: CodecServerDeps): Promise<CodecServerHandle>;
  };
  const ca = await createCertificateAuthority('bench CA');
  const tls = await issueCertificate(ca, { commonName: '127.0.0.1', altNames: ['127.0.0.1'], usage: 'server' });
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const codec: PayloadCodec = { encode: async (p) => p, decode: async (p) => p };
  const server = await mod.startCodecServer(
    {
      CODEC_HOST: '127.0.0.1',
      CODEC_PORT: 0,
      CODEC_UI_ORIGIN: undefined,
      CODEC_TLS_CERT: undefined,
      CODEC_TLS_KEY: undefined,
      CODEC_AUTH_JWKS_URL: undefined,
      CODEC_AUTH_ISSUER_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      CODEC_AUTH_ISSUER: 'bench-issuer',
      CODEC_AUTH_AUDIENCE: 'bench',
      CODEC_DECODE_ROLE: 'phi-decoder',
      CODEC_ENCODE_ROLE: 'payload-encoder',
    },
    { codec, audit: async () => undefined, tls },
  );
  const token = await new SignJWT({ roles: ['phi-decoder'] })
    .setProtectedHeader({ alg: 'EdDSA' })
    .setIssuer('bench-issuer')
    .setAudience('bench')
    .setSubject('bench')
    .setExpirationTime('10m')
    .sign(privateKey);
  process.on('message', (m) => {
    if (m === 'rss') {
      const rss = process.memoryUsage().rss;
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ rss, rssAfterGc: process.memoryUsage().rss });
    } else if (m === 'stop') {
      void server.close().then(() => process.exit(0));
    }
  });
  process.send!({ url: server.url, caPem: ca.certPem, token } satisfies Ready);
}

/**
 * Streams one JSON body of BODY_BYTES from a reused chunk; resolves with the status and the bytes sent before
 * the answer.
 */
function post(ready: Ready, headers: Record<string, string>): Promise<{ status: number; sentBeforeAnswer: number }> {
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const head = Buffer.from('{"pad":"');
  const tail = Buffer.from('"}');
  return new Promise((resolve) => {
    let sent = 0;
    let answeredAt = -1;
    let status = 0;
    const req = https.request(`${ready.url}/decode`, {
      method: 'POST',
      ca: ready.caPem,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(BODY_BYTES), ...headers },
    });
    const done = () => resolve({ status, sentBeforeAnswer: answeredAt < 0 ? sent : answeredAt });
    req.on('response', (res) => {
      answeredAt = sent;
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', done);
    });
    req.on('error', () => (answeredAt < 0 ? done() : undefined));
    const pump = () => {
      while (sent < BODY_BYTES && answeredAt < 0 && !req.destroyed) {
        const left = BODY_BYTES - sent;
        const piece =
          sent === 0
            ? head
            : left === tail.length
              ? tail
              : chunk.subarray(0, Math.min(chunk.length, left - tail.length));
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      if (sent >= BODY_BYTES) req.end();
    };
    pump();
  });
}

async function main(): Promise<void> {
  const modulePath = path.resolve(process.argv[2] ?? path.join(__dirname, '../workers/codec-server.ts'));
  const child = fork(__filename, ['--serve', modulePath], {
    execArgv: [...process.execArgv, '--expose-gc'],
    stdio: 'inherit',
  });
  const next = <T>() => new Promise<T>((resolve) => child.once('message', (m) => resolve(m as T)));
  const ready = await next<Ready>();
  const rss = async () => {
    await sleep(500);
    child.send('rss');
    const m = await next<{ rss: number; rssAfterGc: number }>();
    return { rss: m.rss / MIB, gc: m.rssAfterGc / MIB };
  };
  await post(ready, { authorization: `Bearer ${ready.token}` }); // warm-up: TLS, JIT, parsers
  const before = await rss();
  const anonymous = await Promise.all(Array.from({ length: POSTS }, () => post(ready, {})));
  const afterAnonymous = await rss();
  const authorised = await Promise.all(
    Array.from({ length: POSTS }, () => post(ready, { authorization: `Bearer ${ready.token}` })),
  );
  const afterAuthorised = await rss();
  child.send('stop');
  const kib = (rs: Array<{ sentBeforeAnswer: number }>) => Math.max(...rs.map((r) => r.sentBeforeAnswer)) / 1024;
  const delta = (d: number) => `${d >= 0 ? '+' : ''}${d.toFixed(0)}`;
  const mib = (r: { rss: number; gc: number }, from: { rss: number; gc: number }) =>
    `${r.rss.toFixed(0)} MiB (${delta(r.rss - from.rss)}), after GC ${r.gc.toFixed(0)} MiB (${delta(r.gc - from.gc)})`;
  // Status 0: the connection was closed on the client while it was still sending, before it read the answer.
  const answers = (rs: Array<{ status: number; sentBeforeAnswer: number }>) =>
    `answered ${[...new Set(rs.map((r) => r.status))].sort().join(',')} after at most ` +
    `${kib(rs).toFixed(0)} KiB of 15360 sent`;
  console.log(`codec server: ${path.relative(process.cwd(), modulePath)}`);
  console.log(
    `  RSS before:                                ${before.rss.toFixed(0)} MiB, after GC ${before.gc.toFixed(0)} MiB`,
  );
  console.log(
    `  after ${POSTS} unauthenticated 15 MiB POSTs:      ${mib(afterAnonymous, before)}; ${answers(anonymous)}`,
  );
  console.log(
    `  after ${POSTS} authorised 15 MiB POSTs (floor):   ${mib(afterAuthorised, afterAnonymous)}; ` +
      `${answers(authorised)}`,
  );
}

if (process.argv[2] === '--serve') void serve(process.argv[3]!);
else void main();
