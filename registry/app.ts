/**
 * The registry as a Hono app with its parts injected: a store, auth options
 * and limits. `main.ts` serves it; tests and other hosts build their own.
 *
 * @example Serve a registry on a temporary data dir
 * ```ts ignore
 * import { createRegistryApp } from "./app.ts";
 * import { openSqliteFsStore } from "./storage/sqlite_fs.ts";
 * const store = await openSqliteFsStore(await Deno.makeTempDir());
 * Deno.serve({ port: 0 }, createRegistryApp({ store }).fetch);
 * ```
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AuthOptions } from "./auth.ts";
import { DEFAULT_LIMITS, type Limits, type RegistryEnv } from "./env.ts";
import { authenticate } from "./middleware/auth.ts";
import { deadline } from "./middleware/deadline.ts";
import { apiCors } from "./middleware/cors.ts";
import { problems, serveDocument } from "./openapi.ts";
import { HttpProblem, problem } from "./problem.ts";
import { blobRoutes } from "./routes/blobs.ts";
import { docsRoutes } from "./routes/docs.ts";
import { modelRoutes } from "./routes/models.ts";
import { cachedReads, DocumentCache } from "./routes/_documents.ts";
import { pageRoutes } from "./pages/mod.tsx";
import { assetRoutes } from "./routes/assets.ts";
import { NotFoundError, type Store } from "./storage/store.ts";

export { DEFAULT_LIMITS, type Limits, type RegistryEnv };

/** Parts of a registry. */
export interface RegistryOptions {
  /** Where metadata and blobs live. */
  store: Store;
  /** Auth behaviour. @default { private: false } */
  auth?: AuthOptions;
  /** Limits; missing fields take {@linkcode DEFAULT_LIMITS}. */
  limits?: Partial<Limits>;
}

function routePattern(path: string): RegExp {
  return new RegExp(`^${path.replace(/[.]/g, "\\.").replace(/:[A-Za-z_]+/g, "[^/]+")}$`);
}

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  summary: "Liveness",
  operationId: "getHealth",
  security: [],
  responses: {
    200: { description: "Serving", content: { "text/plain": { schema: z.literal("ok") } } },
    ...problems(401, 500),
  },
});

/**
 * Builds the registry app.
 *
 * @param options the store, auth and limits
 * @returns a Hono app; serve `app.fetch`
 */
export function createRegistryApp(options: RegistryOptions): OpenAPIHono<RegistryEnv> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const auth: AuthOptions = { private: false, ...options.auth };
  const app = new OpenAPIHono<RegistryEnv>();

  app.onError((err, c) => {
    if (err instanceof HttpProblem) return problem(c, err.status, err.message, err.extra);
    // The store's word for a version, model or tag that is not there.
    if (err instanceof NotFoundError) return problem(c, 404, err.message);
    if (err instanceof HTTPException) {
      // bearerAuth's answers are problem documents already.
      if (err.res) return err.getResponse();
      return problem(c, err.status as ContentfulStatusCode, err.message || "The request failed");
    }
    console.error(`${c.req.method} ${c.req.path}:`, err);
    return problem(
      c,
      500,
      "The registry failed to answer this request: it logged the cause; try again or report it",
    );
  });

  app.notFound((c) => {
    const path = c.req.path;
    const candidates = app.routes.filter((r) =>
      r.method !== "ALL" && (path.startsWith("/api/") ? r.path.startsWith("/api/") : true) &&
      routePattern(r.path).test(path)
    );
    // A route that matched this method but passed the request on means "no such thing", not 405.
    if (candidates.length > 0 && !candidates.some((r) => r.method === c.req.method)) {
      const allow = [...new Set(candidates.map((r) => r.method))].join(", ");
      return problem(c, 405, `Method ${c.req.method} is not allowed on ${path}: use ${allow}`, {
        headers: { allow },
      });
    }
    return problem(c, 404, `No route for ${c.req.method} ${path}: see /openapi.json for the API`);
  });

  app.use("*", (c, next) => {
    c.set("store", options.store);
    c.set("limits", limits);
    c.set("auth", auth);
    return next();
  });
  // Only writes can take long before their response starts (uploads, publish
  // validation); a read answers at once and streams, so it skips the timer.
  app.use("*", deadline(limits.requestTimeoutMs));
  const exposed = ["etag", "content-range", "content-length", "accept-ranges"];
  app.use("/api/*", apiCors(exposed));
  app.use("*", authenticate());

  app.openapi(healthz, (c) => c.text("ok", 200));
  app.route("/", assetRoutes());
  app.route("/", blobRoutes());
  const docs = new DocumentCache();
  app.route("/", modelRoutes(docs));
  serveDocument(app, auth);
  app.route("/", docsRoutes());
  app.route("/", pageRoutes());
  if (!auth.private) {
    // Repeated anonymous GETs of a kept model or version document are
    // answered before the router, with the headers the routes send.
    const front = cachedReads({
      store: options.store,
      docs,
      headers: {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "access-control-expose-headers": exposed.join(","),
      },
    });
    const routed = app.fetch;
    app.fetch = (req, env, ctx) => front(req, (r) => routed(r, env, ctx));
  }
  return app;
}
