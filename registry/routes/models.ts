/**
 * Model routes: list and search, one model, one version's manifest, a
 * model.json that stock `tf.loadLayersModel` loads, publishing, tags, yanks.
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { checkNamePart, DIGEST, FILE_PATH, isSemver, printable, TAG } from "../../core/names.ts";
import { formatJsonPath, jsonTextTooDeep, MAX_JSON_DEPTH } from "../../core/model_json.ts";
import { MAX_MODEL_JSON_BYTES, publishVersion, readAll } from "../publish.ts";
import { HttpProblem } from "../problem.ts";
import { resolveRef } from "../resolve.ts";
import { type FileEntry, NotFoundError, type Store, type VersionRecord } from "../storage/store.ts";
import type { RegistryEnv } from "../app.ts";
import { requirePublish, requireRead } from "../middleware/auth.ts";
import { requestBody } from "../middleware/deadline.ts";
import { DocumentCache, versionBody } from "./_documents.ts";

const JSON_HEADERS = { "content-type": "application/json" } as const;

function names(c: Context<RegistryEnv>): { ns: string; name: string } {
  const ns = c.req.param("ns") ?? "";
  const name = c.req.param("name") ?? "";
  try {
    checkNamePart("namespace", ns);
    checkNamePart("name", name);
  } catch (e) {
    throw new HttpProblem(400, (e as Error).message);
  }
  return { ns, name };
}

function checkRef(ref: string): string {
  if (!isSemver(ref) && !TAG.test(ref)) {
    throw new HttpProblem(
      400,
      `Invalid version or tag "${
        printable(ref)
      }": use a semver version such as "1.2.0" or a tag such as "latest"`,
    );
  }
  return ref;
}

/**
 * Loads a model and resolves a reference to a stored version.
 *
 * @param store the store
 * @param ns namespace
 * @param name model name
 * @param ref version or tag
 * @returns the version
 * @throws {HttpProblem} 404 with the reason
 */
export async function loadVersion(
  store: Store,
  ns: string,
  name: string,
  ref: string,
): Promise<VersionRecord> {
  // An exact version resolves to itself (yanked or not): one lookup, and the
  // model's versions and tags are read only to explain a miss.
  if (isSemver(ref)) {
    const exact = await store.getVersion(ns, name, ref);
    if (exact) return exact;
  }
  const model = await store.getModel(ns, name);
  if (!model) {
    throw new HttpProblem(
      404,
      `Model "${ns}/${name}" does not exist: search with GET /api/models?search=${name}`,
    );
  }
  const r = resolveRef(model, ref);
  if ("error" in r) throw new HttpProblem(404, r.error);
  const v = await store.getVersion(ns, name, r.version);
  if (!v) throw new HttpProblem(404, `Version "${r.version}" of "${ns}/${name}" does not exist`);
  return v;
}

/**
 * The JSON document of a version, as the API returns it.
 *
 * @param v the stored version
 * @returns the document with URLs
 */
export function versionDocument(v: VersionRecord): Record<string, unknown> {
  const base = `/api/models/${v.namespace}/${v.name}/${v.version}`;
  return {
    namespace: v.namespace,
    name: v.name,
    version: v.version,
    reference: `${v.namespace}/${v.name}@${v.version}`,
    yanked: v.yanked,
    createdAt: v.createdAt,
    downloads: v.downloads,
    files: v.files,
    card: v.card,
    architecture: v.architecture,
    urls: {
      self: base,
      modelJson: `${base}/model.json`,
      page: `/${v.namespace}/${v.name}/${v.version}`,
    },
  };
}

/** The largest card accepted, serialized. */
export const MAX_CARD_BYTES = 256 * 1024;

/**
 * Reads and parses a JSON request body. Its nesting is checked on the text
 * before parsing: a request holds its documents (the card) one level down, so
 * it may nest one level more than a stored document.
 */
async function readJsonBody(
  c: Context<RegistryEnv>,
  limit: number,
  what: string,
): Promise<unknown> {
  const body = requestBody(c);
  if (!body) throw new HttpProblem(400, `${what} is missing: send it as a JSON request body`);
  const text = new TextDecoder().decode(await readAll(body, limit, what));
  const deep = jsonTextTooDeep(text, MAX_JSON_DEPTH + 1);
  if (deep) {
    const [first, ...rest] = deep;
    const [doc, path] = first === "card" ? ["The card", rest] : [what, deep];
    const levels = first === "card" ? MAX_JSON_DEPTH : MAX_JSON_DEPTH + 1;
    throw new HttpProblem(
      422,
      `${doc} nests more than ${levels} levels of objects and arrays (at ${
        formatJsonPath(first === "card" ? "card" : "", path)
      }): flatten it to at most ${levels} levels; nothing was stored`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpProblem(400, `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** Checks a publish request's shape; returns its files and card or every problem found. */
function parsePublishBody(body: unknown): { files: FileEntry[]; card: Record<string, unknown> } {
  const errors: string[] = [];
  if (!isRecord(body)) {
    throw new HttpProblem(
      422,
      'The publish request must be a JSON object: { "files": [...], "card": {...} }',
    );
  }
  const files: FileEntry[] = [];
  if (!Array.isArray(body.files) || body.files.length === 0) {
    errors.push('"files" must be a non-empty array of { "path", "digest", "size" }');
  } else {
    const seen = new Set<string>();
    body.files.forEach((f: unknown, i: number) => {
      if (!isRecord(f)) {
        return errors.push(`files[${i}] must be an object with "path", "digest" and "size"`);
      }
      const { path, digest, size } = f;
      if (typeof path !== "string" || path.length > 255 || !FILE_PATH.test(path)) {
        errors.push(
          `files[${i}].path "${
            printable(String(path))
          }" must be a relative path without ".." segments`,
        );
      } else if (seen.has(path)) errors.push(`files[${i}].path "${path}" is listed twice`);
      else seen.add(path);
      if (typeof digest !== "string" || !DIGEST.test(digest)) {
        errors.push(
          `files[${i}].digest "${
            printable(String(digest))
          }" must be "sha256:" and 64 lowercase hex digits`,
        );
      }
      if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
        errors.push(`files[${i}].size must be a non-negative integer`);
      }
      if (typeof path === "string" && typeof digest === "string" && typeof size === "number") {
        files.push({ path, digest, size });
      }
    });
    if (!seen.has("model.json")) errors.push('"files" must include "model.json"');
  }
  const card = body.card ?? {};
  if (!isRecord(card)) errors.push('"card" must be an object');
  else {
    for (const key of ["task", "description", "license", "source"] as const) {
      if (card[key] !== undefined && typeof card[key] !== "string") {
        errors.push(`card.${key} must be a string`);
      }
    }
    if (
      card.labels !== undefined &&
      !(Array.isArray(card.labels) && card.labels.every((l) => typeof l === "string"))
    ) {
      errors.push("card.labels must be an array of strings");
    }
    const bytes = new TextEncoder().encode(JSON.stringify(card)).byteLength;
    if (bytes > MAX_CARD_BYTES) {
      errors.push(
        `card takes ${bytes} bytes as JSON, over the limit of ${MAX_CARD_BYTES}: keep large data in a file of the version`,
      );
    }
  }
  if (errors.length > 0) {
    throw new HttpProblem(422, `The publish request is invalid: ${errors[0]}`, { errors });
  }
  return { files, card: card as Record<string, unknown> };
}

function parseLimit(value: string | undefined): number {
  if (value === undefined) return 20;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new HttpProblem(
      400,
      `Invalid limit "${printable(value)}": use a whole number from 1 to 100`,
    );
  }
  return n;
}

/**
 * The model routes.
 *
 * @returns a Hono app with every `/api/models` route
 */
export function modelRoutes(): Hono<RegistryEnv> {
  const app = new Hono<RegistryEnv>();
  const docs = new DocumentCache();

  app.get("/api/models", requireRead, async (c) => {
    const sort = c.req.query("sort") ?? "updated";
    if (sort !== "downloads" && sort !== "updated") {
      throw new HttpProblem(400, `Invalid sort "${printable(sort)}": use "downloads" or "updated"`);
    }
    const search = c.req.query("search");
    const task = c.req.query("task");
    const cursor = c.req.query("cursor");
    if (search !== undefined && search.length > 200) {
      throw new HttpProblem(400, "Search text is over 200 characters: search for a shorter text");
    }
    try {
      const page = await c.var.store.listModels({
        sort,
        limit: parseLimit(c.req.query("limit")),
        ...(search ? { search } : {}),
        ...(task ? { task } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return c.json(page);
    } catch (e) {
      if (e instanceof RangeError) throw new HttpProblem(400, e.message);
      throw e;
    }
  });

  app.get("/api/models/:ns/:name", requireRead, async (c) => {
    const { ns, name } = names(c);
    const store = c.get("store");
    // The revision is read before the data, so what is kept is never older than it.
    const rev = await store.revision(ns, name);
    const key = `${ns}/${name}`;
    let body = docs.model(key, rev);
    if (body === undefined) {
      const model = await store.getModel(ns, name);
      if (!model) {
        throw new HttpProblem(
          404,
          `Model "${ns}/${name}" does not exist: search with GET /api/models?search=${name}`,
        );
      }
      const latest = resolveRef(model, "latest");
      body = JSON.stringify({ ...model, latest: "version" in latest ? latest.version : null });
      docs.setModel(key, rev, body);
    }
    return c.body(body, 200, JSON_HEADERS);
  });

  app.get("/api/models/:ns/:name/:ref", requireRead, async (c) => {
    const { ns, name } = names(c);
    const ref = checkRef(c.req.param("ref"));
    const store = c.get("store");
    const rev = await store.revision(ns, name);
    const key = `${ns}/${name}@${ref}`;
    let doc = docs.version(key, rev);
    if (doc === undefined) {
      const v = await loadVersion(store, ns, name, ref);
      doc = versionBody(v.version, versionDocument(v));
      docs.setVersion(key, rev, doc);
      if (ref !== v.version) docs.setVersion(`${ns}/${name}@${v.version}`, rev, doc);
    }
    const downloads = await store.countDownload(ns, name, doc.version);
    return c.body(doc.head + downloads + doc.tail, 200, JSON_HEADERS);
  });

  app.get("/api/models/:ns/:name/:ref/model.json", requireRead, async (c) => {
    const { ns, name } = names(c);
    const v = await loadVersion(c.var.store, ns, name, checkRef(c.req.param("ref")));
    const entry = v.files.find((f) => f.path === "model.json");
    const stream = entry && await c.var.store.blobs.read(entry.digest);
    if (!entry || !stream) {
      throw new HttpProblem(
        500,
        `model.json of "${ns}/${name}@${v.version}" is missing from the store`,
      );
    }
    const modelJson = JSON.parse(
      new TextDecoder().decode(await readAll(stream, MAX_MODEL_JSON_BYTES, "model.json")),
    );
    const byPath = new Map(v.files.map((f) => [f.path, f.digest]));
    // tfjs joins the model.json URL's folder and each path as strings, so an
    // absolute path would be appended, not resolved: go up from
    // /api/models/ns/name/ref/ to /api/ instead.
    for (const group of modelJson.weightsManifest ?? []) {
      group.paths = group.paths.map((p: string) => `../../../../blobs/${byPath.get(p)}`);
    }
    await c.var.store.countDownload(ns, name, v.version);
    c.header("cache-control", "no-cache");
    return c.json(modelJson);
  });

  app.put("/api/models/:ns/:name/:version", async (c) => {
    const { ns, name } = names(c);
    requirePublish(c, ns);
    const version = c.req.param("version");
    if (!isSemver(version)) {
      throw new HttpProblem(
        422,
        `Invalid version "${printable(version)}": use a semver version such as "1.0.0"`,
      );
    }
    const { store, limits } = c.var;
    const body = await readJsonBody(c, limits.maxManifestBytes, "The publish request");
    const { files, card } = parsePublishBody(body);
    const v = await publishVersion(store, {
      namespace: ns,
      name,
      version,
      files,
      card,
      publishedBy: c.var.tokenLabel,
    }, c.get("deadline"));
    return c.json(versionDocument(v), 201, { location: `/api/models/${ns}/${name}/${version}` });
  });

  app.put("/api/models/:ns/:name/tags/:tag", async (c) => {
    const { ns, name } = names(c);
    requirePublish(c, ns);
    const tag = c.req.param("tag");
    if (!TAG.test(tag) || isSemver(tag)) {
      throw new HttpProblem(
        400,
        `Invalid tag "${
          printable(tag)
        }": start with a letter; use lowercase letters, digits, "-", "_", "."`,
      );
    }
    const body = await readJsonBody(c, 4096, "The tag request");
    const version = isRecord(body) ? body.version : undefined;
    if (typeof version !== "string" || !isSemver(version)) {
      throw new HttpProblem(422, 'The tag request must be { "version": "<semver>" }');
    }
    try {
      await c.var.store.setTag(ns, name, tag, version);
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new HttpProblem(404, `Version "${ns}/${name}@${version}" does not exist`);
      }
      throw e;
    }
    return c.json({ namespace: ns, name, tag, version });
  });

  app.post("/api/models/:ns/:name/:version/yank", async (c) => {
    const { ns, name } = names(c);
    requirePublish(c, ns);
    const version = c.req.param("version");
    if (!isSemver(version)) {
      throw new HttpProblem(
        422,
        `Invalid version "${printable(version)}": yank an exact version such as "1.0.0"`,
      );
    }
    const body = c.req.header("content-length") === "0" || !c.req.raw.body
      ? {}
      : await readJsonBody(c, 4096, "The yank request");
    const yanked = isRecord(body) && body.yanked === false ? false : true;
    try {
      await c.var.store.setYanked(ns, name, version, yanked);
    } catch (e) {
      if (e instanceof NotFoundError) {
        throw new HttpProblem(404, `Version "${ns}/${name}@${version}" does not exist`);
      }
      throw e;
    }
    return c.json({ namespace: ns, name, version, yanked });
  });

  return app;
}
