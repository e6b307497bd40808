/**
 * The API reference at `/docs`: Scalar's reference page over `/openapi.json`,
 * its script served from this registry's own files (the standalone build in
 * `node_modules/@scalar/api-reference`), so the page loads nothing from
 * elsewhere and a Content-Security-Policy holds it to this origin.
 *
 * @module
 */
import { Hono } from "hono";
import { Scalar } from "@scalar/hono-api-reference";
import type { RegistryEnv } from "../env.ts";
import { HttpProblem } from "../problem.ts";

/** Where the page loads the reference's script from. */
export const DOCS_SCRIPT_PATH = "/docs/scalar.js";

/** The standalone build of Scalar's API reference, installed by `deno install`. */
const SCRIPT_FILE = new URL(
  "../../node_modules/@scalar/api-reference/dist/browser/standalone.js",
  import.meta.url,
);

/**
 * The page's policy: scripts from this origin and the one inline script
 * carrying the nonce; styles inline (the reference injects them); requests
 * only to this origin (it fetches /openapi.json and, in its client, the API).
 */
function docsCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'self' 'nonce-${nonce}'`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * The `/docs` page and its script.
 *
 * @returns an app with `GET /docs` and `GET /docs/scalar.js`
 */
export function docsRoutes(): Hono<RegistryEnv> {
  const app = new Hono<RegistryEnv>();
  let script: Promise<Uint8Array<ArrayBuffer>> | undefined;

  app.get("/docs", async (c) => {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    c.header("content-security-policy", docsCsp(nonce));
    c.header("x-content-type-options", "nosniff");
    const page = Scalar<RegistryEnv>({
      url: "/openapi.json",
      pageTitle: "Model zoo registry API",
      // A cdn URL makes the page load this one script, with the nonce.
      cdn: DOCS_SCRIPT_PATH,
      nonce,
      withDefaultFonts: false,
      hideClientButton: false,
    });
    return await page(c, () => Promise.resolve());
  });

  app.get(DOCS_SCRIPT_PATH, async (c) => {
    script ??= Deno.readFile(SCRIPT_FILE).catch((e) => {
      script = undefined;
      throw new HttpProblem(
        500,
        `The API reference's script is missing (${
          e instanceof Error ? e.message : e
        }): run "deno install" in the registry's folder`,
      );
    });
    return c.body(await script, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=86400",
      "x-content-type-options": "nosniff",
    });
  });
  return app;
}
