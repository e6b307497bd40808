/**
 * The OpenAPI 3.1 document of the registry. The routes declare their
 * parameters, bodies and answers with the schemas of `core/wire.ts` (see
 * `routes/`); this module holds what they share: the problem answers by
 * status, and the document's header, served at `/openapi.json`.
 *
 * @module
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuthOptions } from "./auth.ts";
import { Problem } from "../core/wire.ts";
import type { RegistryEnv } from "./env.ts";

/**
 * The statuses a problem answer may have: the name of its response in the
 * document's `components.responses`, and what it means on this API.
 */
const PROBLEM_STATUSES = {
  400: ["BadRequest", "The request is malformed: the detail names the value and what to send"],
  401: [
    "Unauthorized",
    "No token where one is needed, or an unknown or malformed one (on any route): send Authorization: Bearer <token>",
  ],
  403: ["Forbidden", "The token lacks the scope this needs"],
  404: ["NotFound", "No such model, version, tag or blob"],
  409: ["Conflict", "The version exists: versions are immutable"],
  413: ["ContentTooLarge", "The body is over the limit"],
  416: ["RangeNotSatisfiable", "The range is outside the blob"],
  422: ["UnprocessableContent", "The request is well formed but invalid: every problem is listed"],
  500: ["InternalServerError", "The registry failed: it logged the cause"],
  503: [
    "ServiceUnavailable",
    "The write took longer than --request-timeout: nothing was stored",
  ],
} as const;

/** A status of {@linkcode problems}. */
export type ProblemStatus = keyof typeof PROBLEM_STATUSES;

/**
 * The problem answers of a route, for its `responses`: each refers to the
 * shared response of its status, so the document (and the types generated
 * from it) says once what a 404 is.
 *
 * @param statuses the statuses the route may answer with a problem
 * @returns the responses, each an RFC 9457 problem document
 */
export function problems<S extends ProblemStatus>(
  ...statuses: S[]
): { [K in S]: { $ref: string } } {
  return Object.fromEntries(
    statuses.map((s) => [s, { $ref: `#/components/responses/${PROBLEM_STATUSES[s][0]}` }]),
  ) as never;
}

/**
 * Adds the problem responses that {@linkcode problems} refers to.
 *
 * @param app the app whose document holds them
 */
function registerProblems(app: OpenAPIHono<RegistryEnv>): void {
  // Registered by name: no route names the schema itself any more. A clone,
  // because register() calls the `.openapi` method that zod schemas get only
  // when made after this module's zod was extended, and core/wire.ts may
  // have been loaded first (by a client in the same program).
  app.openAPIRegistry.register("Problem", Problem.clone());
  const schema = { $ref: "#/components/schemas/Problem" };
  for (const [name, description] of Object.values(PROBLEM_STATUSES)) {
    app.openAPIRegistry.registerComponent("responses", name, {
      description,
      content: { "application/problem+json": { schema } },
    });
  }
}

/** The problems of a route that needs a publish token, beyond its own. */
export const WRITE_PROBLEMS = [401, 403, 500, 503] as const;

/**
 * The security of a read route: anonymous. On a private registry reads need a
 * `read` token, and the document served there says so (see serveDocument).
 */
export const READ_SECURITY: { [name: string]: string[] }[] = [];

const documentRoute = createRoute({
  method: "get",
  path: "/openapi.json",
  summary: "This document",
  operationId: "getOpenApiDocument",
  security: [],
  responses: {
    200: {
      description: "The OpenAPI 3.1 document",
      content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
    },
    ...problems(401, 500),
  },
});

/**
 * Serves the document at `/openapi.json`: the routes as declared, the bearer
 * scheme, and `/` as the server: relative to wherever the document is read. The read routes are documented as
 * anonymous (`security: []`); on a private registry they need a token, and
 * its document says so.
 *
 * @param app the registry app, its API routes already added
 * @param auth whether the registry is private
 */
export function serveDocument(app: OpenAPIHono<RegistryEnv>, auth: AuthOptions): void {
  registerProblems(app);
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    description: "A token from `deno task token create --scope <scope>`",
  });
  let body: string | undefined;
  app.openapi(documentRoute, (c) => {
    if (body === undefined) {
      const doc = app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Model zoo registry",
          version: "1.0.0",
          description:
            "Versioned TensorFlow.js checkpoints with their architecture metadata. Errors are application/problem+json (RFC 9457) with a detail that says what to do.",
          license: { name: "MIT", url: "https://opensource.org/license/mit" },
        },
        // Relative: right wherever the registry is served, behind a proxy too.
        servers: [{ url: "/", description: "The registry serving this document" }],
      });
      if (auth.private) {
        for (const item of Object.values(doc.paths ?? {})) {
          for (const op of Object.values(item) as { security?: unknown[] }[]) {
            if (Array.isArray(op.security) && op.security.length === 0) {
              op.security = [{ bearer: [] }];
            }
          }
        }
      }
      body = JSON.stringify(doc);
    }
    return c.body(body, 200, { "content-type": "application/json" }) as never;
  });
}
