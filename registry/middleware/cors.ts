/**
 * CORS for the API: any origin may read it.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/**
 * Lets pages on any origin call the API and read the headers named in
 * `exposeHeaders`. Preflight requests (`OPTIONS`) get Hono's `cors()`; every
 * other request gets its two headers through `c.header()`, which costs less
 * than `cors()` itself: that one writes them into a placeholder response that
 * Hono then copies into the real one on every request.
 *
 * Responses must be built with the context (`c.json`, `c.body`, …), not with
 * `new Response`, to carry the headers.
 *
 * @param exposeHeaders response headers a cross-origin page may read
 * @returns the middleware
 *
 * @example Open the API to every origin
 * ```ts ignore
 * app.use("/api/*", apiCors(["etag", "content-length"]));
 * ```
 */
export function apiCors(exposeHeaders: string[]): MiddlewareHandler {
  const preflight = cors({ origin: "*", exposeHeaders });
  const exposed = exposeHeaders.join(",");
  return (c, next) => {
    if (c.req.method === "OPTIONS") return preflight(c, next);
    c.header("access-control-allow-origin", "*");
    if (exposed) c.header("access-control-expose-headers", exposed);
    return next();
  };
}
