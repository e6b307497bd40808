/**
 * A corpus of malformed requests against a registry on a real port, with a
 * real SQLite file and blob folder: bad names, versions, references, digests,
 * bodies, model.json documents, headers, ranges, tokens, query parameters and
 * methods. Every case must get a 4xx problem+json whose `detail` says what was
 * wrong, and must leave the store exactly as it was; after the corpus, every
 * document and page still answers.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "@std/assert";
import { join, relative } from "node:path";
import { createToken } from "../../registry/auth.ts";
import type { Store } from "../../registry/storage/store.ts";
import {
  digestOf,
  modelFiles,
  publish,
  startRegistry,
  type TestFile,
} from "../_helpers/registry.ts";

await tf.setBackend("cpu");

/** One malformed request. */
interface Case {
  /** What is wrong, as the report names it. */
  what: string;
  method?: string;
  path: string;
  /** `publish` (publish:zoo), `reader` (read only), `other` (publish:other), `none`, or a raw Authorization header. */
  auth?: "publish" | "reader" | "other" | "none" | { header: string };
  headers?: Record<string, string>;
  body?: string | Uint8Array<ArrayBuffer>;
  /** The status expected; any 4xx when absent. */
  status?: number;
  /** Text the detail must contain (the offending value, or what to do). */
  detail?: string | RegExp;
  /** Send to the --private registry instead. */
  private?: boolean;
}

const enc = new TextEncoder();
const hex64 = (c: string) => c.repeat(64);

/** Everything a malformed request could change: models, versions, tags, downloads, blobs, uploads. */
async function snapshot(store: Store, dataDir: string): Promise<string> {
  const models: unknown[] = [];
  for (const m of (await store.listModels({ limit: 100 })).items) {
    const versions = [];
    for (const v of m.versions) {
      versions.push(await store.getVersion(m.namespace, m.name, v.version));
    }
    models.push({ ...m, versions });
  }
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (!e.name.startsWith("zoo.sqlite")) {
        files.push(`${relative(dataDir, path)} ${(await Deno.stat(path)).size}`);
      }
    }
  };
  await walk(dataDir);
  return JSON.stringify({ models, files: files.sort() });
}

/** A model.json variant of the published dense model. */
function variant(base: TestFile, edit: (json: Record<string, unknown>) => unknown): TestFile {
  const json = JSON.parse(new TextDecoder().decode(base.bytes));
  const out = edit(json) ?? json;
  return {
    path: "model.json",
    bytes: enc.encode(typeof out === "string" ? out : JSON.stringify(out)),
  };
}

Deno.test("a corpus of malformed requests gets 4xx problem+json with a useful detail and changes nothing", async () => {
  const reg = await startRegistry({ limits: { maxBlobBytes: 64 * 1024 } });
  const priv = await startRegistry({ auth: { private: true } });
  try {
    const tokens = {
      publish: reg.token,
      reader: (await createToken(reg.store, ["read"], "reader")).token,
      other: (await createToken(reg.store, ["publish:other"], "other")).token,
    };
    const privTokens = {
      publish: priv.token,
      reader: (await createToken(priv.store, ["read"], "reader")).token,
      other: (await createToken(priv.store, ["publish:other"], "other")).token,
    };
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [16], units: 4, name: "head" })],
    });
    const files = await modelFiles(model);
    model.dispose();
    const [modelJson, shard] = files as [TestFile, TestFile];
    assertEquals((await publish(reg, "zoo/dense", "1.0.0", files, { task: "test" })).status, 201);
    assertEquals((await publish(priv, "zoo/dense", "1.0.0", files, { task: "test" })).status, 201);

    // Every model.json variant is uploaded now, so that publishing it changes nothing.
    const layer0 = (j: Record<string, unknown>) =>
      (j.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } })
        .config.layers[0]!.config;
    const manifest0 = (j: Record<string, unknown>) =>
      (j.weightsManifest as { paths: string[]; weights: Record<string, unknown>[] }[])[0]!;
    const variants: Record<string, TestFile> = {
      "not JSON": variant(modelJson, () => "{ not json"),
      "an array": variant(modelJson, () => []),
      "no modelTopology": variant(modelJson, (j) => {
        delete j.modelTopology;
      }),
      "a graph model": variant(modelJson, (j) => {
        j.modelTopology = { node: [], versions: {} };
      }),
      "an unknown layer class": variant(modelJson, (j) => {
        (j.modelTopology as { config: { layers: { class_name: string }[] } }).config.layers[0]!
          .class_name = "MyLayer";
      }),
      "a shard path with ..": variant(modelJson, (j) => {
        manifest0(j).paths = ["../x.bin"];
      }),
      "a shard not among the files": variant(modelJson, (j) => {
        manifest0(j).paths = ["other.bin"];
      }),
      "a weight with a string dtype": variant(modelJson, (j) => {
        manifest0(j).weights[1]!.dtype = "string";
      }),
      "weights bigger than the shard": variant(modelJson, (j) => {
        manifest0(j).weights[1]!.shape = [40];
      }),
      "a Dense kernel of another shape": variant(modelJson, (j) => {
        layer0(j).units = 5;
      }),
      'a Conv2D kernel_size of "y"': variant(modelJson, (j) => {
        const l = (j.modelTopology as { config: { layers: Record<string, unknown>[] } }).config
          .layers[0]!;
        l.class_name = "Conv2D";
        (l.config as Record<string, unknown>).kernel_size = "y";
        (l.config as Record<string, unknown>).filters = 4;
      }),
      "userDefinedMetadata 30,000 levels deep": variant(
        modelJson,
        (j) =>
          JSON.stringify({ ...j, userDefinedMetadata: "@" }).replace(
            '"@"',
            "[".repeat(30_000) + "]".repeat(30_000),
          ),
      ),
      "a topology 70 levels deep": variant(modelJson, (j) => {
        let t = j.modelTopology;
        for (let i = 0; i < 20; i++) {
          t = { class_name: "Sequential", config: { name: `s${i}`, layers: [t] } };
        }
        j.modelTopology = t;
      }),
      "userDefinedMetadata over 1 MiB": variant(modelJson, (j) => {
        j.userDefinedMetadata = { x: "y".repeat(1024 * 1024) };
      }),
    };
    const uploaded = new Map<string, string>();
    for (const [what, f] of Object.entries(variants)) {
      const digest = await digestOf(f.bytes);
      for (const r of [reg, priv]) {
        const up = await fetch(`${r.url}/api/blobs?digest=${digest}`, {
          method: "POST",
          headers: { authorization: `Bearer ${r.token}` },
          body: f.bytes,
        });
        // The 1 MiB one is over this registry's 64 KiB blob limit: only the private one has it.
        assert(up.status === 201 || up.status === 413, `${what}: ${up.status}`);
        await up.body?.cancel();
      }
      uploaded.set(what, digest);
    }
    const entry = async (f: TestFile) => ({
      path: f.path,
      digest: await digestOf(f.bytes),
      size: f.bytes.byteLength,
    });
    const good = [await entry(modelJson), await entry(shard)];
    const withModelJson = (what: string) => [
      { path: "model.json", digest: uploaded.get(what)!, size: variants[what]!.bytes.byteLength },
      good[1],
    ];
    const put = (body: unknown) => JSON.stringify(body);
    const blobDigest = good[1]!.digest;
    const absent = `sha256:${hex64("0")}`;

    const cases: Case[] = [];
    const add = (c: Case) => cases.push(c);

    // Names: every route that takes a namespace and a name.
    const badNames: [string, string][] = [
      ["Zoo", 'Invalid namespace "Zoo"'],
      ["a..b", 'Invalid namespace "a..b"'],
      ["-a", 'Invalid namespace "-a"'],
      ["_a", 'Invalid namespace "_a"'],
      ["a%20b", 'Invalid namespace "a b"'],
      ["a%00b", "Invalid namespace"],
      ["a%0Ab", "Invalid namespace"],
      ["%C3%A9", "Invalid namespace"],
      ["a%2Fb", 'Invalid namespace "a/b"'],
      ["a".repeat(65), "Invalid namespace"],
      ["a%3Cscript%3E", 'Invalid namespace "a<script>"'],
    ];
    for (const [ns, detail] of badNames) {
      add({ what: `namespace ${ns}`, path: `/api/models/${ns}/dense`, status: 400, detail });
      add({ what: `namespace ${ns} in a ref`, path: `/api/models/${ns}/dense/1.0.0`, status: 400 });
      add({
        what: `namespace ${ns} in a model.json`,
        path: `/api/models/${ns}/dense/1.0.0/model.json`,
        status: 400,
      });
      add({
        what: `namespace ${ns} in a publish`,
        method: "PUT",
        path: `/api/models/${ns}/dense/2.0.0`,
        auth: "publish",
        body: put({ files: good }),
        status: 400,
        detail,
      });
      add({
        what: `name ${ns}`,
        path: `/api/models/zoo/${ns}/latest`,
        status: 400,
        detail: detail.replace("namespace", "name"),
      });
      add({
        what: `name ${ns} in a tag move`,
        method: "PUT",
        path: `/api/models/zoo/${ns}/tags/stable`,
        auth: "publish",
        body: put({ version: "1.0.0" }),
        status: 400,
      });
      add({
        what: `name ${ns} in a yank`,
        method: "POST",
        path: `/api/models/zoo/${ns}/1.0.0/yank`,
        auth: "publish",
        status: 400,
      });
    }
    add({ what: "an unknown model", path: "/api/models/zoo/nothing", status: 404 });
    add({ what: "an unknown model's ref", path: "/api/models/zoo/nothing/1.0.0", status: 404 });

    // Versions and references.
    for (
      const v of [
        "1.0",
        "01.0.0",
        "1.0.0-",
        "1.0.0+",
        "v1.0.0",
        "1.0.0.0",
        "1.0.0-01",
        "1.-1.0",
        `1.0.0-${"a".repeat(300)}`,
        "%20",
      ]
    ) {
      add({
        what: `publish version ${v.slice(0, 20)}`,
        method: "PUT",
        path: `/api/models/zoo/dense/${v}`,
        auth: "publish",
        body: put({ files: good }),
        status: 422,
        detail: "Invalid version",
      });
      add({
        what: `yank version ${v.slice(0, 20)}`,
        method: "POST",
        path: `/api/models/zoo/dense/${v}/yank`,
        auth: "publish",
        status: 422,
        detail: "Invalid version",
      });
    }
    for (
      const ref of ["Latest", "-x", "x!", "%00", "a%2Fb", "x".repeat(65), "1.0", "%F0%9F%98%80"]
    ) {
      add({
        what: `ref ${ref.slice(0, 20)}`,
        path: `/api/models/zoo/dense/${ref}`,
        status: 400,
        detail: "Invalid version or tag",
      });
      add({
        what: `ref ${ref.slice(0, 20)} of a model.json`,
        path: `/api/models/zoo/dense/${ref}/model.json`,
        status: 400,
      });
    }
    for (const ref of ["2.0.0", "nightly", "1.0.0-beta"]) {
      add({ what: `a missing ref ${ref}`, path: `/api/models/zoo/dense/${ref}`, status: 404 });
      add({
        what: `a missing ref ${ref} of a model.json`,
        path: `/api/models/zoo/dense/${ref}/model.json`,
        status: 404,
      });
    }
    add({
      what: "publishing an existing version",
      method: "PUT",
      path: "/api/models/zoo/dense/1.0.0",
      auth: "publish",
      body: put({ files: good }),
      status: 409,
      detail: "versions are immutable",
    });

    // Digests.
    for (
      const d of [
        `sha256:${hex64("a").slice(1)}`,
        `sha256:${hex64("a")}a`,
        `sha256:${hex64("A")}`,
        `sha1:${"a".repeat(40)}`,
        `sha256:${"z".repeat(64)}`,
        "sha256:",
        "%2e%2e%2fetc",
        `sha256:..%2F..%2F${"a".repeat(58)}`,
        `md5:${"a".repeat(32)}`,
      ]
    ) {
      add({
        what: `blob digest ${JSON.stringify(d)}`,
        path: `/api/blobs/${d}`,
        status: 400,
      });
      add({
        what: `upload digest ${JSON.stringify(d)}`,
        method: "POST",
        path: `/api/blobs?digest=${d}`,
        auth: "publish",
        body: new Uint8Array(10),
        status: 400,
        detail: "Invalid digest",
      });
    }
    add({ what: "an absent blob", path: `/api/blobs/${absent}`, status: 404 });
    add({
      what: "an upload whose bytes hash to another digest",
      method: "POST",
      path: `/api/blobs?digest=${absent}`,
      auth: "publish",
      body: new Uint8Array(100).fill(9),
      status: 400,
      detail: "not the expected",
    });
    add({
      what: "an upload over the blob limit, declared",
      method: "POST",
      path: "/api/blobs",
      auth: "publish",
      body: new Uint8Array(65 * 1024),
      status: 413,
      detail: "over the limit of 65536 bytes",
    });

    // Ranges.
    for (const range of ["bytes=999999-", "bytes=-0", `bytes=${shard.bytes.byteLength}-`]) {
      add({
        what: `range ${range}`,
        path: `/api/blobs/${blobDigest}`,
        headers: { range },
        status: 416,
        detail: "is outside blob",
      });
    }

    // Publish bodies.
    const bodies: [string, string | Uint8Array<ArrayBuffer>, number, string | RegExp][] = [
      ["not JSON", "{not json", 400, "not valid JSON"],
      ["empty", "", 400, "not valid JSON"],
      ["a BOM before an empty object", "\uFEFF{}", 422, '"files" must be a non-empty array'],
      ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 400, "not valid JSON"],
      ["an array", "[]", 422, "must be a JSON object"],
      ["null", "null", 422, "must be a JSON object"],
      ["a number", "42", 422, "must be a JSON object"],
      ["no files", "{}", 422, '"files" must be a non-empty array'],
      ["empty files", put({ files: [] }), 422, '"files" must be a non-empty array'],
      ["files not an array", put({ files: "model.json" }), 422, '"files" must be'],
      ["a file that is not an object", put({ files: [1] }), 422, "files[0] must be an object"],
      [
        "a path with ..",
        put({ files: [...good, { ...good[1], path: "../x" }] }),
        422,
        'without ".." segments',
      ],
      [
        "an absolute path",
        put({ files: [...good, { ...good[1], path: "/x" }] }),
        422,
        "files[2].path",
      ],
      [
        "a backslash path",
        put({ files: [...good, { ...good[1], path: "a\\b" }] }),
        422,
        "files[2].path",
      ],
      [
        "a path over 255 characters",
        put({ files: [...good, { ...good[1], path: "a".repeat(256) }] }),
        422,
        "files[2].path",
      ],
      ["a path listed twice", put({ files: [...good, good[1]] }), 422, "is listed twice"],
      [
        "a bad file digest",
        put({ files: [{ ...good[0], digest: "sha256:x" }] }),
        422,
        'must be "sha256:"',
      ],
      ["a negative size", put({ files: [{ ...good[0], size: -1 }] }), 422, "non-negative integer"],
      [
        "a fractional size",
        put({ files: [{ ...good[0], size: 1.5 }] }),
        422,
        "non-negative integer",
      ],
      ["a size as text", put({ files: [{ ...good[0], size: "10" }] }), 422, "non-negative integer"],
      [
        "a size of 2^60",
        put({ files: [{ ...good[0], size: 2 ** 60 }] }),
        422,
        "non-negative integer",
      ],
      ["no model.json", put({ files: [good[1]] }), 422, 'must include "model.json"'],
      ["a card that is an array", put({ files: good, card: [] }), 422, '"card" must be an object'],
      [
        "a card task that is a number",
        put({ files: good, card: { task: 1 } }),
        422,
        "card.task must be a string",
      ],
      [
        "card labels that are numbers",
        put({ files: good, card: { labels: [1] } }),
        422,
        "card.labels",
      ],
      [
        "a card 70 levels deep",
        `{"files":${JSON.stringify(good)},"card":${'{"a":'.repeat(70)}1${"}".repeat(70)}}`,
        422,
        "The card nests more than 64 levels",
      ],
      [
        "a body 100,000 levels deep",
        `{"files":${JSON.stringify(good)},"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
        422,
        "nests more than 65 levels",
      ],
      [
        "a card over 256 KiB",
        put({ files: good, card: { d: "x".repeat(300_000) } }),
        422,
        "card takes 300008 bytes as JSON, over the limit of 262144",
      ],
      [
        "a body over 1 MiB",
        put({ files: good, card: { d: "x".repeat(1_100_000) } }),
        413,
        "over the limit",
      ],
      [
        "a blob never uploaded",
        put({ files: [{ ...good[0], digest: absent }] }),
        422,
        "has not been uploaded",
      ],
      [
        "a size that differs from the blob",
        put({ files: [{ ...good[0], size: 5 }, good[1]] }),
        422,
        "is listed with 5 bytes",
      ],
    ];
    for (const [what, body, status, detail] of bodies) {
      add({
        what: `publish body: ${what}`,
        method: "PUT",
        path: "/api/models/zoo/dense/2.0.0",
        auth: "publish",
        body,
        status,
        detail,
      });
    }

    // model.json documents.
    const modelJsonDetails: Record<string, string | RegExp> = {
      "not JSON": "model.json is not valid JSON",
      "an array": "must be a JSON object, got an array",
      "no modelTopology": 'no "modelTopology"',
      "a graph model": 'must be an object with "class_name"',
      "an unknown layer class": 'class "MyLayer", which TensorFlow.js does not know',
      "a shard path with ..": "must be a relative file name",
      "a shard not among the files": 'needs shard "other.bin"',
      "a weight with a string dtype": 'dtype "string"',
      "weights bigger than the shard": /weights take \d+ bytes but its shards/,
      "a Dense kernel of another shape":
        'Layer "head" (Dense) expects weight "head/kernel" of shape [16,5]',
      'a Conv2D kernel_size of "y"': 'at layer "head" (Conv2D)',
      "userDefinedMetadata 30,000 levels deep": "Its userDefinedMetadata nests more than 64 levels",
      "a topology 70 levels deep": "model.json nests more than 64 levels",
      "userDefinedMetadata over 1 MiB": "Its userDefinedMetadata takes",
    };
    for (const [what, detail] of Object.entries(modelJsonDetails)) {
      const onPrivate = what === "userDefinedMetadata over 1 MiB";
      add({
        what: `model.json: ${what}`,
        method: "PUT",
        path: "/api/models/zoo/dense/2.0.0",
        auth: "publish",
        body: put({ files: withModelJson(what) }),
        status: 422,
        detail,
        private: onPrivate,
      });
    }

    // Tags and yanks.
    for (const tag of ["1.0.0", "Stable", "-x", "x".repeat(65), "a%20b"]) {
      add({
        what: `tag ${tag.slice(0, 20)}`,
        method: "PUT",
        path: `/api/models/zoo/dense/tags/${tag}`,
        auth: "publish",
        body: put({ version: "1.0.0" }),
        status: 400,
        detail: "Invalid tag",
      });
    }
    for (
      const [what, body, status] of [
        ["not JSON", "{", 400],
        ["no version", "{}", 422],
        ["a version that is not semver", put({ version: "latest" }), 422],
        ["a version that is a number", put({ version: 1 }), 422],
        ["a version that does not exist", put({ version: "9.9.9" }), 404],
        ["a body over 4 KiB", put({ version: "1.0.0", x: "y".repeat(5000) }), 413],
        ["a body 1,000 levels deep", "[".repeat(1000) + "]".repeat(1000), 422],
      ] as const
    ) {
      add({
        what: `tag body: ${what}`,
        method: "PUT",
        path: "/api/models/zoo/dense/tags/stable",
        auth: "publish",
        body,
        status,
      });
    }
    add({
      what: "yanking a version that does not exist",
      method: "POST",
      path: "/api/models/zoo/dense/9.9.9/yank",
      auth: "publish",
      status: 404,
      detail: "does not exist",
    });
    add({
      what: "a yank body that is not JSON",
      method: "POST",
      path: "/api/models/zoo/dense/1.0.0/yank",
      auth: "publish",
      body: "{",
      status: 400,
      detail: "not valid JSON",
    });

    // Tokens and headers.
    const writes: [string, string, string | undefined][] = [
      ["PUT", "/api/models/zoo/dense/2.0.0", put({ files: good })],
      ["PUT", "/api/models/zoo/dense/tags/stable", put({ version: "1.0.0" })],
      ["POST", "/api/models/zoo/dense/1.0.0/yank", undefined],
      ["POST", "/api/blobs", "bytes"],
    ];
    for (const [method, path, body] of writes) {
      const base = { method, path, ...(body === undefined ? {} : { body }) };
      add({ ...base, what: `${method} ${path} without a token`, auth: "none", status: 401 });
      add({ ...base, what: `${method} ${path} with a read token`, auth: "reader", status: 403 });
      if (!path.startsWith("/api/blobs")) {
        add({
          ...base,
          what: `${method} ${path} with another namespace's token`,
          auth: "other",
          status: 403,
          detail: 'scope "publish:zoo"',
        });
      }
    }
    for (
      const header of [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer a b",
        "Token abc",
        "Bearer zoo_00000000_" + "0".repeat(48),
        "Bearer " + "x".repeat(10_000),
        "bearer\tzoo",
      ]
    ) {
      add({
        what: `Authorization ${header.slice(0, 24)}`,
        path: "/api/models",
        auth: { header },
        status: 401,
        detail: /Malformed Authorization header|Unknown token/,
      });
    }
    for (const auth of ["none", "other"] as const) {
      for (
        const path of [
          "/api/models",
          "/api/models/zoo/dense",
          "/api/models/zoo/dense/latest",
          "/api/models/zoo/dense/latest/model.json",
          `/api/blobs/${blobDigest}`,
        ]
      ) {
        add({
          what: `private ${path} with ${auth}`,
          path,
          auth,
          status: auth === "none" ? 401 : 403,
          private: true,
        });
      }
    }
    add({
      what: "private: a blob probe by an upload token without read",
      method: "POST",
      path: `/api/blobs?digest=${blobDigest}`,
      auth: "publish",
      headers: { "content-length": "0" },
      status: 400,
      private: true,
    });

    // Pages: a malformed name or version is no page at all.
    for (
      const path of [
        "/Zoo/dense",
        "/zoo/a..b",
        "/zoo/dense/1.0",
        "/zoo/dense/%00",
        "/zoo/x%0Ay/1.0.0",
        `/zoo/${"a".repeat(70)}`,
        "/zoo/dense/%3Cscript%3E",
      ]
    ) {
      add({ what: `page ${path.slice(0, 24)}`, path, status: 404, detail: "No page at" });
    }

    // Query parameters, methods, routes.
    for (
      const [q, detail] of [
        ["limit=0", 'Invalid limit "0"'],
        ["limit=101", 'Invalid limit "101"'],
        ["limit=abc", 'Invalid limit "abc"'],
        ["limit=1.5", 'Invalid limit "1.5"'],
        ["limit=-1", 'Invalid limit "-1"'],
        ["sort=bogus", 'Invalid sort "bogus"'],
        ["sort=%3Cb%3E", 'Invalid sort "<b>"'],
        ["cursor=garbage", "cursor"],
        ["cursor=%00%00", "cursor"],
        [`search=${"s".repeat(201)}`, "over 200 characters"],
      ] as [string, string][]
    ) {
      add({ what: `list ${q.slice(0, 20)}`, path: `/api/models?${q}`, status: 400, detail });
    }
    add({ what: "DELETE a model", method: "DELETE", path: "/api/models/zoo/dense", status: 405 });
    add({ what: "PATCH a blob", method: "PATCH", path: `/api/blobs/${blobDigest}`, status: 405 });
    add({ what: "GET the upload route", path: "/api/blobs", status: 405, detail: "POST" });
    add({
      what: "an unknown API route",
      path: "/api/nothing/here",
      status: 404,
      detail: "openapi.json",
    });
    add({ what: "a too deep API route", path: "/api/models/a/b/c/d/e/f", status: 404 });

    const before = {
      public: await snapshot(reg.store, reg.dataDir),
      private: await snapshot(priv.store, priv.dataDir),
    };
    const failures: string[] = [];
    const seen = new Set<string>();
    for (const c of cases) {
      assert(!seen.has(c.what), `two cases are named "${c.what}"`);
      seen.add(c.what);
      const target = c.private ? priv : reg;
      const toks = c.private ? privTokens : tokens;
      const headers = new Headers(c.headers);
      const auth = c.auth ?? "none";
      if (typeof auth === "object") headers.set("authorization", auth.header);
      else if (auth !== "none") headers.set("authorization", `Bearer ${toks[auth]}`);
      let res: Response;
      try {
        res = await fetch(`${target.url}${c.path}`, {
          method: c.method ?? "GET",
          headers,
          ...(c.body === undefined ? {} : { body: c.body }),
        });
      } catch (e) {
        failures.push(`${c.what}: the request failed: ${e}`);
        continue;
      }
      const text = await res.text();
      const problems: string[] = [];
      if (res.status < 400 || res.status >= 500) problems.push(`status ${res.status}`);
      if (c.status !== undefined && res.status !== c.status) {
        problems.push(`status ${res.status}, expected ${c.status}`);
      }
      if (res.headers.get("content-type") !== "application/problem+json") {
        problems.push(`content-type ${res.headers.get("content-type")}`);
      }
      let detail = "";
      try {
        const body = JSON.parse(text);
        detail = String(body.detail ?? "");
        if (body.status !== res.status) problems.push(`body status ${body.status}`);
      } catch {
        problems.push(`body is not JSON: ${text.slice(0, 80)}`);
      }
      // Useful: a sentence long enough to say what and why, no stack trace.
      if (detail.length < 25) problems.push(`detail too short: "${detail}"`);
      if (/\bat .*\.ts:\d+/.test(detail)) problems.push("detail holds a stack trace");
      if (c.detail !== undefined) {
        const ok = typeof c.detail === "string" ? detail.includes(c.detail) : c.detail.test(detail);
        if (!ok) problems.push(`detail "${detail}" lacks ${c.detail}`);
      }
      const after = await snapshot(target.store, target.dataDir);
      if (after !== before[c.private ? "private" : "public"]) problems.push("the store changed");
      if (problems.length > 0) failures.push(`${c.what}: ${problems.join("; ")}`);
    }
    assertEquals(
      failures,
      [],
      `${failures.length} of ${cases.length} cases failed:\n${failures.join("\n")}`,
    );
    assert(cases.length >= 200, `${cases.length} cases`);

    // Nothing was left broken: every document and page of the published version answers.
    for (
      const path of [
        "/api/models",
        "/api/models/zoo/dense",
        "/api/models/zoo/dense/1.0.0",
        "/api/models/zoo/dense/latest",
        "/api/models/zoo/dense/latest/model.json",
        `/api/blobs/${blobDigest}`,
        "/",
        "/zoo/dense",
        "/zoo/dense/1.0.0",
      ]
    ) {
      const r = await fetch(`${reg.url}${path}`);
      await r.body?.cancel();
      assertEquals(r.status, 200, path);
    }
  } finally {
    await reg.close();
    await priv.close();
  }
});
