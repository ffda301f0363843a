/**
 * The admin routes' answer to a body that fails its schema: 400 with the first five issues. Its own file so
 * admin-routes.ts and client-admin.ts answer alike without importing each other.
 */
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';

export function badRequest(reply: FastifyReply, error: z.ZodError): FastifyReply {
  const paths = error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).slice(0, 5);
  return reply.code(400).send({ error: 'invalid_request', details: paths });
}
