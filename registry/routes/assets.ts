/**
 * The registry's own static assets: the pages' script bundle (`web/zoo.ts`
 * with the SDK modules and TensorFlow.js it imports, built by
 * `deno task build:web` into `web/dist/`), tfjs's WebAssembly binaries copied
 * from the installed `@tensorflow/tfjs-backend-wasm`, and the favicon. No CDN:
 * pages load nothing from elsewhere.
 *
 * Bundle and wasm names carry a hash of their content (`web/dist/manifest.json`
 * maps `zoo.js` to `zoo-<hash>.js`), so they are served as immutable for a
 * year; a rebuilt bundle gets a new name.
 *
 * @example Mount before the pages, whose `/:ns/:name` would otherwise take `/assets/…`
 * ```ts ignore
 * import { assetRoutes } from "./routes/assets.ts";
 * app.route("/", assetRoutes());
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import { problem } from "../problem.ts";

/** Where the built assets and their manifest live. */
const DIST = new URL("../../web/dist/", import.meta.url);
/** The favicon, checked in next to the bundle's sources. */
const FAVICON = new URL("../../web/favicon.ico", import.meta.url);
/** Cache-Control of content-hashed files. */
const IMMUTABLE = "public, max-age=31536000, immutable";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  wasm: "application/wasm",
  map: "application/json",
};

let manifest: Record<string, string> | null | undefined;

/**
 * The built assets: logical name (`zoo.js`, `tfjs-backend-wasm-simd.wasm`) →
 * content-hashed file name, or an empty map when the bundle was never built.
 *
 * @returns the manifest, read once
 */
export function assetManifest(): Record<string, string> {
  if (manifest === undefined) {
    try {
      manifest = JSON.parse(Deno.readTextFileSync(new URL("manifest.json", DIST))) as Record<
        string,
        string
      >;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      manifest = null;
    }
  }
  return manifest ?? {};
}

/**
 * The URL path of a built asset.
 *
 * @param name the logical name, e.g. `zoo.js`
 * @returns `/assets/<hashed name>`, or null when the bundle lacks it (pages then render without scripts)
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { assetPath } from "./assets.ts";
 * const path = assetPath("zoo.js");
 * assert(path === null || /^\/assets\/zoo-[0-9a-f]+\.js$/.test(path));
 * ```
 */
export function assetPath(name: string): string | null {
  const file = assetManifest()[name];
  return file === undefined ? null : `/assets/${file}`;
}

/**
 * The asset routes: `GET /assets/:file` for files named in the manifest and
 * `GET /favicon.ico`. Both are public, even on a private registry: they hold
 * no model data.
 *
 * @returns a Hono app to mount at `/`
 */
export function assetRoutes(): Hono {
  const app = new Hono();
  app.get("/assets/:file", async (c) => {
    const file = c.req.param("file");
    if (!Object.values(assetManifest()).includes(file)) {
      return problem(
        c,
        404,
        `No asset "${
          file.slice(0, 100)
        }": asset names change with each build; reload the page for the current ones`,
      );
    }
    const ext = file.slice(file.lastIndexOf(".") + 1);
    const body = await Deno.readFile(new URL(file, DIST));
    return c.body(body, 200, {
      "content-type": TYPES[ext] ?? "application/octet-stream",
      "cache-control": IMMUTABLE,
      "x-content-type-options": "nosniff",
      "cross-origin-resource-policy": "same-origin",
    });
  });
  app.get("/favicon.ico", async (c) => {
    const body = await Deno.readFile(FAVICON);
    return c.body(body, 200, {
      "content-type": "image/x-icon",
      "cache-control": "public, max-age=86400",
      "x-content-type-options": "nosniff",
    });
  });
  return app;
}
