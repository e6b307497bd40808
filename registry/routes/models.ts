/**
 * Model routes: list and search, one model, one version's manifest, a
 * model.json that stock `tf.loadLayersModel` loads, publishing, tags, yanks.
 * Each is declared with the schemas of `core/wire.ts`, which validate its
 * parameters and body and describe it in the OpenAPI document.
 *
 * @module
 */
import { createRoute, OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { formatJsonPath, jsonTextTooDeep, MAX_JSON_DEPTH } from "../../core/model_json.ts";
import {
  describeIssue,
  ListQuery,
  type ModelDocument,
  ModelDocumentSchema,
  ModelJsonDocument,
  ModelList,
  ModelName,
  Namespace,
  PublishRequest,
  Ref,
  Tag,
  TagDocument,
  TagRequest,
  Version,
  VersionDocument,
  YankDocument,
  YankRequest,
} from "../../core/wire.ts";
import { MAX_MODEL_JSON_BYTES, publishVersion, readAll } from "../publish.ts";
import { HttpProblem } from "../problem.ts";
import { loadVersion, missingModel, resolveRef } from "../resolve.ts";
import type { VersionRecord } from "../storage/store.ts";
import type { RegistryEnv } from "../env.ts";
import { requirePublish, requireRead } from "../middleware/auth.ts";
import { requestBody } from "../middleware/deadline.ts";
import { problems, READ_SECURITY, WRITE_PROBLEMS } from "../openapi.ts";
import { validationHook } from "../validate.ts";
import { type DocumentCache, versionBody, versionText } from "./_documents.ts";

const JSON_HEADERS = { "content-type": "application/json" } as const;

/**
 * The JSON document of a version, as the API returns it.
 *
 * @param v the stored version
 * @returns the document with URLs
 */
export function versionDocument(v: VersionRecord): VersionDocument {
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

/**
 * Reads and parses a JSON request body. Its nesting is checked on the text
 * before parsing: a request holds its documents (the card) one level down, so
 * it may nest one level more than a stored document. An `optional` body that
 * is absent or empty reads as undefined.
 */
async function readJsonBody(
  c: Context<RegistryEnv>,
  limit: number,
  what: string,
  optional = false,
): Promise<unknown> {
  const body = requestBody(c);
  if (!body) {
    if (optional) return undefined;
    throw new HttpProblem(400, `${what} is missing: send it as a JSON request body`);
  }
  const text = new TextDecoder().decode(await readAll(body, limit, what));
  // A request whose body may be left out can also come with an empty one
  // (a POST without Content-Length, as `curl -X POST` sends it).
  if (optional && text.trim() === "") return undefined;
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

/** Checks a publish request against {@linkcode PublishRequest}; a 422 with every problem otherwise. */
function parsePublishBody(body: unknown): PublishRequest {
  if (!isRecord(body)) {
    throw new HttpProblem(
      422,
      'The publish request must be a JSON object: { "files": [...], "card": {...} }',
    );
  }
  const parsed = PublishRequest.safeParse(body);
  if (parsed.success) return parsed.data;
  const errors = [...new Set(parsed.error.issues.map((i) => describeIssue(i, body)))];
  throw new HttpProblem(422, `The publish request is invalid: ${errors[0]}`, { errors });
}

const ModelParams = z.object({ ns: Namespace, name: ModelName });
const RefParams = ModelParams.extend({ ref: Ref });
/** A publish names the exact version in the place a read names a version or tag. */
const PublishParams = ModelParams.extend({ ref: Version });
const YankParams = ModelParams.extend({ version: Version });
const TagParams = ModelParams.extend({ tag: Tag });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A read route: GET, anonymous unless the registry is private. */
const read = <R extends Omit<RouteConfig, "method" | "middleware" | "security">>(route: R) =>
  createRoute({
    ...route,
    method: "get",
    middleware: [requireRead] as const,
    security: READ_SECURITY,
  });

const list = read({
  path: "/api/models",
  operationId: "listModels",
  summary: "List and search models",
  description: "Search covers name, description, task and labels; nextCursor pages.",
  request: { query: ListQuery },
  responses: {
    200: json(ModelList, "A page of models"),
    ...problems(400, 401, 403, 500),
  },
});

const getModel = read({
  path: "/api/models/{ns}/{name}",
  operationId: "getModel",
  summary: "One model: versions, tags, downloads, latest",
  request: { params: ModelParams },
  responses: {
    200: json(ModelDocumentSchema, "The model"),
    ...problems(400, 401, 403, 404, 500),
  },
});

const getVersion = read({
  path: "/api/models/{ns}/{name}/{ref}",
  operationId: "getVersion",
  summary: "One version's files, card and architecture (ref: version or tag)",
  description: "Counts a download.",
  request: { params: RefParams },
  responses: {
    200: json(VersionDocument, "The version"),
    ...problems(400, 401, 403, 404, 500),
  },
});

const getModelJson = read({
  path: "/api/models/{ns}/{name}/{ref}/model.json",
  operationId: "getModelJson",
  summary: "A model.json that tf.loadLayersModel(url) loads as is",
  description: "Its weight paths point at the blobs. Counts a download.",
  request: { params: RefParams },
  responses: {
    200: json(ModelJsonDocument, "The model.json"),
    ...problems(400, 401, 403, 404, 413, 500),
  },
});

const publish = createRoute({
  method: "put",
  path: "/api/models/{ns}/{name}/{ref}",
  operationId: "publishVersion",
  summary: "Publish a version from uploaded blobs",
  description:
    "ref is the exact version to publish. The model.json is checked (layers built, every weight's shape), every file's blob must be uploaded; the version becomes visible atomically.",
  security: [{ bearer: [] }],
  request: {
    params: PublishParams,
  },
  responses: {
    201: {
      ...json(VersionDocument, "Published"),
      headers: { location: { schema: { type: "string" }, description: "The version's URL" } },
    },
    ...problems(400, 404, 409, 413, 422, ...WRITE_PROBLEMS),
  },
});

const moveTag = createRoute({
  method: "put",
  path: "/api/models/{ns}/{name}/tags/{tag}",
  operationId: "moveTag",
  summary: "Point a tag at a version",
  security: [{ bearer: [] }],
  request: {
    params: TagParams,
  },
  responses: {
    200: json(TagDocument, "The tag moved"),
    ...problems(400, 404, 413, 422, ...WRITE_PROBLEMS),
  },
});

const yank = createRoute({
  method: "post",
  path: "/api/models/{ns}/{name}/{version}/yank",
  operationId: "yankVersion",
  summary: 'Yank a version ({"yanked": false} restores it)',
  description:
    "A yanked version is hidden from tags and latest, still downloadable by exact version.",
  security: [{ bearer: [] }],
  request: {
    params: YankParams,
  },
  responses: {
    200: json(YankDocument, "Yanked or restored"),
    ...problems(400, 404, 413, 422, ...WRITE_PROBLEMS),
  },
});

/**
 * The model routes.
 *
 * @param docs where the model and version GETs keep what they serialize
 * @returns an app with every `/api/models` route, documented
 */
export function modelRoutes(docs: DocumentCache): OpenAPIHono<RegistryEnv> {
  const app = new OpenAPIHono<RegistryEnv>({ defaultHook: validationHook() });
  // A write's handler reads its body itself (size limit, nesting, deadline)
  // and checks it against the same schema: the route is documented with its
  // body and served with its parameters validated.
  // Writes check the token once the names are valid, before the other values.
  const writes = new OpenAPIHono<RegistryEnv>({
    defaultHook: validationHook({
      status: { ref: 422, version: 422 },
      authorize: (c, { ns }) => requirePublish(c, ns),
    }),
  });
  const write = <R extends RouteConfig>(route: R, body: z.ZodType, required: boolean): R => {
    const { middleware: _, ...documented } = route;
    writes.openAPIRegistry.registerPath({
      ...documented,
      request: {
        ...route.request,
        body: { required, content: { "application/json": { schema: body } } },
      },
    } as RouteConfig);
    return { ...route, hide: true };
  };

  app.openapi(list, async (c) => {
    const { search, task, cursor, sort, limit } = c.req.valid("query");
    try {
      const page = await c.var.store.listModels({
        sort,
        limit,
        ...(search ? { search } : {}),
        ...(task ? { task } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return c.json(page, 200);
    } catch (e) {
      // A cursor from another query or made up.
      if (e instanceof RangeError) throw new HttpProblem(400, e.message);
      throw e;
    }
  });

  app.openapi(getModel, async (c) => {
    const { ns, name } = c.req.valid("param");
    const store = c.get("store");
    // The revision is read before the data, so what is kept is never older than it.
    const rev = await store.revision(ns, name);
    const key = `${ns}/${name}`;
    let body = docs.model(key, rev);
    if (body === undefined) {
      const model = await store.getModel(ns, name);
      if (!model) throw missingModel(ns, name);
      const latest = resolveRef(model, "latest");
      const doc: ModelDocument = { ...model, latest: "version" in latest ? latest.version : null };
      body = JSON.stringify(doc);
      docs.setModel(key, rev, body);
    }
    return c.body(body, 200, JSON_HEADERS) as never;
  });

  app.openapi(getVersion, async (c) => {
    const { ns, name, ref } = c.req.valid("param");
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
    return c.body(versionText(doc, downloads), 200, JSON_HEADERS) as never;
  });

  app.openapi(getModelJson, async (c) => {
    const { ns, name, ref } = c.req.valid("param");
    const v = await loadVersion(c.var.store, ns, name, ref);
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
    ) as z.infer<typeof ModelJsonDocument>;
    const byPath = new Map(v.files.map((f) => [f.path, f.digest]));
    // tfjs joins the model.json URL's folder and each path as strings, so an
    // absolute path would be appended, not resolved: go up from
    // /api/models/ns/name/ref/ to /api/ instead.
    for (const group of modelJson.weightsManifest ?? []) {
      group.paths = group.paths.map((p: string) => `../../../../blobs/${byPath.get(p)}`);
    }
    await c.var.store.countDownload(ns, name, v.version);
    c.header("cache-control", "no-cache");
    return c.json(modelJson, 200);
  });

  writes.openapi(write(publish, PublishRequest, true), async (c) => {
    const { ns, name, ref: version } = c.req.valid("param");
    requirePublish(c, ns);
    const { store, limits } = c.var;
    const body = await readJsonBody(c, limits.maxManifestBytes, "The publish request");
    const { files, card } = parsePublishBody(body);
    const v = await publishVersion(store, {
      namespace: ns,
      name,
      version,
      files,
      card: card ?? {},
      publishedBy: c.var.tokenLabel,
    }, c.get("deadline"));
    return c.json(versionDocument(v), 201, { location: `/api/models/${ns}/${name}/${version}` });
  });

  writes.openapi(write(moveTag, TagRequest, true), async (c) => {
    const { ns, name, tag } = c.req.valid("param");
    requirePublish(c, ns);
    const body = TagRequest.safeParse(await readJsonBody(c, 4096, "The tag request"));
    if (!body.success) {
      throw new HttpProblem(422, 'The tag request must be { "version": "<semver>" }');
    }
    // A version that does not exist is the store's NotFoundError: a 404.
    await c.var.store.setTag(ns, name, tag, body.data.version);
    return c.json({ namespace: ns, name, tag, version: body.data.version }, 200);
  });

  writes.openapi(write(yank, YankRequest, false), async (c) => {
    const { ns, name, version } = c.req.valid("param");
    requirePublish(c, ns);
    const raw = (await readJsonBody(c, 4096, "The yank request", true)) ?? {};
    const body = YankRequest.safeParse(raw);
    if (!body.success) {
      throw new HttpProblem(422, 'The yank request must be empty or { "yanked": true | false }');
    }
    const yanked = body.data.yanked ?? true;
    await c.var.store.setYanked(ns, name, version, yanked);
    return c.json({ namespace: ns, name, version, yanked }, 200);
  });

  app.route("/", writes);
  return app;
}
