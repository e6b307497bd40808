/**
 * Errors as `application/problem+json` (RFC 9457): every failure the registry
 * answers carries a title, the status and a detail a person can act on.
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";
import type { Problem } from "../core/wire.ts";

/** The media type of problem documents. */
export const PROBLEM_TYPE = "application/problem+json";

/** The Content-Security-Policy of problem documents: nothing loads, runs or frames them. */
export const PROBLEM_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox";

/** An RFC 9457 problem document, as the API document's `Problem` schema declares it. */
export type ProblemDetails = z.infer<typeof Problem>;

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  422: "Unprocessable Content",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Thrown inside handlers to answer with a problem document. */
export class HttpProblem extends Error {
  /**
   * @param status the HTTP status
   * @param detail what went wrong and what to do
   * @param extra more fields: `errors`, headers to set
   */
  constructor(
    readonly status: ContentfulStatusCode,
    detail: string,
    readonly extra: { errors?: string[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = "HttpProblem";
  }
}

/**
 * Builds a problem response.
 *
 * @param c the request context
 * @param status the HTTP status
 * @param detail what went wrong and what to do
 * @param extra itemized errors and headers
 * @returns the response
 */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  detail: string,
  extra: { errors?: string[]; headers?: Record<string, string> } = {},
): Response {
  const body: ProblemDetails = {
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    detail,
    instance: new URL(c.req.url).pathname,
  };
  if (extra.errors && extra.errors.length > 0) body.errors = extra.errors;
  // Through the context, so headers set before the failure (CORS) stay. A
  // detail quotes what the client sent: a browser must never sniff the body as
  // HTML nor run anything in it, even when the problem is opened as a page.
  return c.body(JSON.stringify(body), status, {
    "content-type": PROBLEM_TYPE,
    "x-content-type-options": "nosniff",
    "content-security-policy": PROBLEM_CSP,
    ...extra.headers,
  });
}
