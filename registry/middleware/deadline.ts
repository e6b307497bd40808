/**
 * The time limit of writes (`--request-timeout`). At the limit the client is
 * answered 503 and the request's body stream is aborted, so a handler still
 * reading it (an upload from a stalled client) fails at once, removes its
 * temporary data and ends, instead of living on until the client disconnects.
 *
 * Handlers read bodies through {@linkcode requestBody}, which carries the abort.
 *
 * @module
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { HttpProblem } from "../problem.ts";
import type { RegistryEnv } from "../env.ts";

/** The signal of a request that has no time limit. */
const NEVER = new AbortController().signal;

/**
 * Answers 503 when a write takes longer than `ms` and aborts its body stream;
 * reads (GET, HEAD) answer at once and stream, so they are not timed.
 *
 * @param ms the time limit in milliseconds
 * @returns the middleware; it sets `c.var.deadline`
 *
 * @example
 * ```ts ignore
 * app.use("*", deadline(600_000));
 * ```
 */
export function deadline(ms: number): MiddlewareHandler<RegistryEnv> {
  // Not an async function: a read passes straight on, without a promise of its own.
  return (c, next) => {
    if (c.req.method === "GET" || c.req.method === "HEAD") {
      c.set("deadline", NEVER);
      return next();
    }
    return timed(c, next, ms);
  };
}

/** Runs a write under its time limit. */
async function timed(c: Context<RegistryEnv>, next: Next, ms: number): Promise<void> {
  const controller = new AbortController();
  c.set("deadline", controller.signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const problem = new HttpProblem(
        503,
        `The request took longer than ${ms} ms: nothing was stored; try again`,
      );
      controller.abort(problem);
      reject(problem);
    }, ms);
  });
  try {
    await Promise.race([next(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The request body, aborted at the request's deadline: a read pending then
 * rejects with the 503 problem, and the underlying stream is cancelled.
 *
 * @param c the request context
 * @returns the body stream, or null when the request has none
 */
export function requestBody(c: Context<RegistryEnv>): ReadableStream<Uint8Array> | null {
  const body = c.req.raw.body;
  if (!body) return null;
  const signal = c.get("deadline");
  if (!signal || signal === NEVER) return body;
  return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>(), { signal });
}
