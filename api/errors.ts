/**
 * One registry of error codes and their HTTP status. Handlers throw `ApiError`; `errorHandler` turns it, Fastify's
 * validation errors and anything else into `{"error","field?","message"}`. A 5xx never shows internals.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../lib/logger.ts';

export const ERRORS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type ErrorCode = keyof typeof ERRORS;

export class ApiError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'ApiError';
  }
  get status(): number { return ERRORS[this.code]; }
}

export const badRequest = (field: string, message: string) => new ApiError('bad_request', message, field);

export interface ErrorBody { error: ErrorCode; field?: string; message: string }

function codeOfStatus(status: number): ErrorCode {
  const hit = Object.entries(ERRORS).find(([, s]) => s === status);
  return hit ? (hit[0] as ErrorCode) : status >= 500 ? 'internal' : 'bad_request';
}

/** The field a validation error is about: `/from` → from, missing property → its name, body root → body. */
function fieldOf(err: FastifyError): string {
  const v = err.validation?.[0];
  if (!v) return err.validationContext ?? 'request';
  const params = v.params as { missingProperty?: string; additionalProperty?: string } | undefined;
  const named = params?.missingProperty ?? params?.additionalProperty;
  const path = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
  return named ? (path ? `${path}.${named}` : named) : path || err.validationContext || 'request';
}

export function toErrorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof ApiError) {
    return { status: err.status, body: { error: err.code, ...(err.field ? { field: err.field } : {}), message: err.message } };
  }
  const fe = err as FastifyError;
  if (fe?.validation) {
    const field = fieldOf(fe);
    const v = fe.validation[0];
    const allowed = (v?.params as { allowedValues?: unknown[] } | undefined)?.allowedValues;
    const msg = `${v?.message ?? 'is invalid'}${allowed ? `: ${allowed.join(', ')}` : ''}`;
    if ((v?.params as { additionalProperty?: string } | undefined)?.additionalProperty) {
      return { status: 400, body: { error: 'bad_request', field, message: `${field} is not a field of this request` } };
    }
    return { status: 400, body: { error: 'bad_request', field, message: `${field} ${msg}` } };
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, body: { error: codeOfStatus(status), message: fe.message } };
  }
  if (status === 503) return { status, body: { error: 'unavailable', message: fe.message } };
  return { status: 500, body: { error: 'internal', message: 'internal error; the server log has the details' } };
}

export function errorHandler(log: Logger) {
  return (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = toErrorBody(err);
    if (status >= 500) log.error({ err, url: req.url.split('?')[0], method: req.method }, 'request failed'); // never the query: it may hold a secret
    return reply.code(status).send(body);
  };
}
