/**
 * The OpenAPI 3.1 description of the registry, built from one route table
 * that the app also uses to answer 405 with the right `Allow` header.
 *
 * @module
 */

/** One route as served: method and Hono path. */
export interface RouteSpec {
  method: "GET" | "HEAD" | "POST" | "PUT";
  /** Hono path with `:param` segments. */
  path: string;
  summary: string;
  /** Response content type of success. */
  produces:
    | "application/json"
    | "application/octet-stream"
    | "text/html"
    | "text/plain"
    | "text/javascript"
    | "image/x-icon";
  /** Needs a token with a publish scope. */
  write?: boolean;
  /** Takes a body: JSON or raw bytes. */
  body?: "json" | "bytes";
  /** Query parameters. */
  query?: string[];
}

/** Every route of the registry. */
export const ROUTES: readonly RouteSpec[] = [
  {
    method: "GET",
    path: "/api/models",
    summary: "List and search models",
    produces: "application/json",
    query: ["search", "task", "sort", "limit", "cursor"],
  },
  {
    method: "GET",
    path: "/api/models/:ns/:name",
    summary: "One model: versions, tags, downloads",
    produces: "application/json",
  },
  {
    method: "GET",
    path: "/api/models/:ns/:name/:ref",
    summary: "One version's manifest, card and architecture (ref: version or tag)",
    produces: "application/json",
  },
  {
    method: "GET",
    path: "/api/models/:ns/:name/:ref/model.json",
    summary: "A model.json that tf.loadLayersModel(url) loads as is",
    produces: "application/json",
  },
  {
    method: "PUT",
    path: "/api/models/:ns/:name/:version",
    summary: "Publish a version from uploaded blobs",
    produces: "application/json",
    write: true,
    body: "json",
  },
  {
    method: "PUT",
    path: "/api/models/:ns/:name/tags/:tag",
    summary: "Point a tag at a version",
    produces: "application/json",
    write: true,
    body: "json",
  },
  {
    method: "POST",
    path: "/api/models/:ns/:name/:version/yank",
    summary: 'Yank a version ({"yanked": false} restores it)',
    produces: "application/json",
    write: true,
    body: "json",
  },
  {
    method: "GET",
    path: "/api/blobs/:digest",
    summary: "A blob's bytes (Range, If-None-Match)",
    produces: "application/octet-stream",
  },
  {
    method: "HEAD",
    path: "/api/blobs/:digest",
    summary: "Whether a blob exists and its size",
    produces: "application/octet-stream",
  },
  {
    method: "POST",
    path: "/api/blobs",
    summary: "Upload one blob, streamed; ?digest= is checked",
    produces: "application/json",
    write: true,
    body: "bytes",
    query: ["digest"],
  },
  {
    method: "GET",
    path: "/",
    summary: "Search page",
    produces: "text/html",
    query: ["search", "task", "sort", "cursor"],
  },
  { method: "GET", path: "/:ns/:name", summary: "Model page", produces: "text/html" },
  { method: "GET", path: "/:ns/:name/:version", summary: "Version page", produces: "text/html" },
  {
    method: "GET",
    path: "/assets/:file",
    summary: "The pages' script bundle or a tfjs wasm binary, content-hashed and immutable",
    produces: "text/javascript",
  },
  { method: "GET", path: "/favicon.ico", summary: "The pages' icon", produces: "image/x-icon" },
  { method: "GET", path: "/openapi.json", summary: "This document", produces: "application/json" },
  { method: "GET", path: "/healthz", summary: "Liveness", produces: "text/plain" },
];

/** `/a/:b` → `/a/{b}`. */
export function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z_]+)/g, "{$1}");
}

/**
 * Builds the OpenAPI 3.1 document.
 *
 * @returns the document as a plain object
 */
export function openApiDocument(): Record<string, unknown> {
  const problem = {
    description: "An RFC 9457 problem",
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const params = [...r.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    for (const q of r.query ?? []) {
      params.push({ name: q, in: "query", required: false, schema: { type: "string" } });
    }
    const op: Record<string, unknown> = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${
        toOpenApiPath(r.path).replace(/[^A-Za-z0-9]+/g, "_")
      }`,
      parameters: params,
      responses: {
        [
          r.method === "PUT" && !r.path.includes("/tags/") ||
            r.method === "POST" && r.body === "bytes"
            ? "201"
            : "200"
        ]: {
          description: "Success",
          content: { [r.produces]: {} },
        },
        "400": problem,
        "404": problem,
        ...(r.write
          ? {
            "401": problem,
            "403": problem,
            "409": problem,
            "413": problem,
            "422": problem,
            // Past --request-timeout; the body is aborted and nothing is stored.
            "503": problem,
          }
          : {}),
      },
    };
    if (r.write) op.security = [{ bearer: [] }];
    if (r.body === "json") op.requestBody = { required: true, content: { "application/json": {} } };
    if (r.body === "bytes") {
      op.requestBody = { required: true, content: { "application/octet-stream": {} } };
    }
    (paths[toOpenApiPath(r.path)] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Model zoo registry",
      version: "1.0.0",
      description: "Versioned TensorFlow.js checkpoints with their architecture metadata.",
    },
    paths,
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      schemas: {
        Problem: {
          type: "object",
          required: ["type", "title", "status", "detail"],
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            instance: { type: "string" },
            errors: { type: "array", items: { type: "string" } },
          },
        },
      },
    },
  };
}
