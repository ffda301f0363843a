/** Free loopback ports for the embedded dev stack and the test harness. */
import net from 'node:net';

/** True when nothing listens on host:port right now (bind test; the port can still be taken later). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/** A port the kernel considers free on host (bind to 0, read it, release it). */
export function randomFreePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not obtain a free port'))));
    });
  });
}

/**
 * `prefer` when it is free on host, otherwise a random free port. `avoid` lists ports already
 * promised to another part of the same start-up (two picks in a row could otherwise collide).
 */
export async function findFreePort(
  options: { prefer?: number; host?: string; avoid?: readonly number[] } = {},
): Promise<number> {
  const host = options.host ?? '127.0.0.1';
  const avoid = new Set(options.avoid ?? []);
  if (
    options.prefer !== undefined &&
    options.prefer > 0 &&
    !avoid.has(options.prefer) &&
    (await isPortFree(options.prefer, host))
  ) {
    return options.prefer;
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await randomFreePort(host);
    if (!avoid.has(port)) return port;
  }
  throw new Error(`no free port found on ${host}`);
}
