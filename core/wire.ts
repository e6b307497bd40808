/**
 * The registry's wire format, once: a zod schema for every request and
 * response body and every path and query parameter, with the type inferred
 * from it. The registry validates requests and builds its OpenAPI document
 * from these schemas; the SDK's client types what it reads with the same
 * types. A schema's error says what was wrong with the value and what to send
 * instead, so a failed validation reads as the problem `detail` as it is.
 *
 * @example Check a publish request the way the registry does
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { PublishRequest } from "./wire.ts";
 * const ok = PublishRequest.safeParse({
 *   files: [{ path: "model.json", digest: `sha256:${"0".repeat(64)}`, size: 2 }],
 * });
 * assertEquals(ok.success, true);
 * const bad = PublishRequest.safeParse({ files: [{ path: "../x", digest: "md5:1", size: -1 }] });
 * assertEquals(bad.error?.issues.map((i) => i.path.join(".")), [
 *   "files.0.path",
 *   "files.0.digest",
 *   "files.0.size",
 *   "files", // no model.json among them
 * ]);
 * ```
 *
 * @module
 */
import { z } from "zod";
import { DIGEST, FILE_PATH, isSemver, NAME_PART, printable, TAG } from "./names.ts";

/** The largest card accepted, serialized as JSON. */
export const MAX_CARD_BYTES = 256 * 1024;

/** Longest search text of `GET /api/models`. */
export const MAX_SEARCH_CHARS = 200;

const quoted = (value: unknown) => `"${printable(String(value))}"`;

function namePart(kind: "namespace" | "name") {
  return z.string().regex(NAME_PART, {
    error: (iss) =>
      `Invalid ${kind} ${
        quoted(iss.input)
      }: use 1-64 lowercase letters, digits, "-", "_" or ".", starting with a letter or digit`,
  }).meta({
    description: `The model's ${kind}: 1-64 lowercase letters, digits, "-", "_", "."; no ".."`,
    example: kind === "namespace" ? "zoo" : "lenet5",
  });
}

/** A model's namespace in a path. */
export const Namespace = namePart("namespace");
/** A model's name in a path. */
export const ModelName = namePart("name");

/** A version (`1.2.0`) or a tag (`latest`) in a path. */
export const Ref = z.string().refine((v) => isSemver(v) || TAG.test(v), {
  error: (iss) =>
    `Invalid version or tag ${
      quoted(iss.input)
    }: use a semver version such as "1.2.0" or a tag such as "latest"`,
}).meta({
  description: "A semver version such as 1.2.0, or a tag such as latest",
  example: "1.0.0",
});

/** An exact semver version in a body. */
export const Version = z.string().refine(isSemver, {
  error: (iss) => `Invalid version ${quoted(iss.input)}: use a semver version such as "1.0.0"`,
}).meta({ description: "A semantic version (semver.org)", example: "1.0.0" });

/** A tag name in a path: starts with a letter, and is not a version. */
export const Tag = z.string().refine((t) => TAG.test(t) && !isSemver(t), {
  error: (iss) =>
    `Invalid tag ${
      quoted(iss.input)
    }: start with a letter; use lowercase letters, digits, "-", "_", "."`,
}).meta({
  description: "A tag: starts with a letter; lowercase letters, digits, -, _, .",
  example: "stable",
});

/** A content digest. */
export const Digest = z.string().regex(DIGEST, {
  error: (iss) =>
    `Invalid digest ${quoted(iss.input)}: use "sha256:" followed by 64 lowercase hex digits`,
}).meta({
  description: "sha256: and 64 lowercase hex digits",
  example: `sha256:${"0".repeat(64)}`,
});

/** A problem document (RFC 9457): what every error answer carries. */
export const Problem = z.object({
  type: z.string().meta({ description: "about:blank: the status says it all" }),
  title: z.string(),
  status: z.int(),
  detail: z.string().meta({ description: "What went wrong and what to do about it" }),
  instance: z.string().optional().meta({ description: "The request path" }),
  errors: z.array(z.string()).optional().meta({ description: "Every problem found, itemized" }),
}).meta({ id: "Problem", description: "An RFC 9457 problem" });
/** A problem document. */
export type Problem = z.infer<typeof Problem>;

/** One file of a version: a path in the checkpoint and the blob holding it. */
export const FileEntry = z.object({
  path: z.string().max(255, {
    error: (iss) => `${quoted(iss.input)} must be a relative path without ".." segments`,
  })
    .regex(FILE_PATH, {
      error: (iss) => `${quoted(iss.input)} must be a relative path without ".." segments`,
    }).meta({ description: "Relative path, e.g. model.json, group1-shard1of1.bin" }),
  digest: z.string().regex(DIGEST, {
    error: (iss) => `${quoted(iss.input)} must be "sha256:" and 64 lowercase hex digits`,
  }),
  size: z.number({ error: "must be a non-negative integer" }).int({
    error: "must be a non-negative integer",
  }).min(0, { error: "must be a non-negative integer" }).max(Number.MAX_SAFE_INTEGER, {
    error: "must be a non-negative integer",
  }),
}, { error: 'must be an object with "path", "digest" and "size"' }).meta({
  id: "FileEntry",
  description: "One file of a version and the blob holding it",
});
/** One file of a version. */
export type FileEntry = z.infer<typeof FileEntry>;

/** The model card: a few known fields, and anything else the publisher records. */
export const Card = z.looseObject({
  task: z.string({ error: "must be a string" }).optional(),
  description: z.string({ error: "must be a string" }).optional(),
  license: z.string({ error: "must be a string" }).optional(),
  source: z.string({ error: "must be a string" }).optional(),
  labels: z.array(z.string({ error: "must be a string" }), {
    error: "must be an array of strings",
  }).optional(),
}, { error: "must be an object" }).meta({
  id: "Card",
  description: "Task, labels, dataset, license, metrics, lineage, …; at most 256 KiB as JSON",
});
/** A model card. */
export type Card = z.infer<typeof Card>;

/** `PUT /api/models/{ns}/{name}/{ref}`: a version from uploaded blobs. */
export const PublishRequest = z.object({
  files: z.array(FileEntry, { error: 'must be a non-empty array of { "path", "digest", "size" }' })
    .min(1, { error: 'must be a non-empty array of { "path", "digest", "size" }', abort: true })
    .superRefine((files, ctx) => {
      const seen = new Set<string>();
      files.forEach((f, i) => {
        if (seen.has(f.path)) {
          ctx.addIssue({
            code: "custom",
            path: [i, "path"],
            message: `"${f.path}" is listed twice`,
          });
        }
        seen.add(f.path);
      });
      if (!seen.has("model.json")) {
        ctx.addIssue({ code: "custom", message: 'must include "model.json"' });
      }
    }),
  card: Card.optional().superRefine((card, ctx) => {
    const bytes = new TextEncoder().encode(JSON.stringify(card ?? {})).byteLength;
    if (bytes > MAX_CARD_BYTES) {
      ctx.addIssue({
        code: "custom",
        message:
          `card takes ${bytes} bytes as JSON, over the limit of ${MAX_CARD_BYTES}: keep large data in a file of the version`,
      });
    }
  }),
}).meta({ id: "PublishRequest", description: "The files of the version and its card" });
/** A publish request. */
export type PublishRequest = z.infer<typeof PublishRequest>;

/** `PUT /api/models/{ns}/{name}/tags/{tag}`. */
export const TagRequest = z.object({ version: Version }).meta({ id: "TagRequest" });
/** A tag move. */
export type TagRequest = z.infer<typeof TagRequest>;

/** `POST /api/models/{ns}/{name}/{version}/yank`; an empty body yanks. */
export const YankRequest = z.object({
  yanked: z.boolean().optional().meta({ description: "false restores the version" }),
}).meta({ id: "YankRequest" });
/** A yank or un-yank. */
export type YankRequest = z.infer<typeof YankRequest>;

/** One model, as `GET /api/models/:ns/:name` returns it. */
export interface ModelDocument {
  /** The namespace, e.g. `zoo`. */
  namespace: string;
  /** The model name, e.g. `lenet5`. */
  name: string;
  /** From the latest version's card. */
  description: string;
  /** From the latest version's card. */
  task: string;
  /** From the latest version's card. */
  labels: string[];
  /** ISO 8601 time of the last publish, tag move or yank. */
  updatedAt: string;
  /** Downloads of all its versions. */
  downloads: number;
  /** Every version, oldest first, without its files. */
  versions: {
    /** The version. */
    version: string;
    /** ISO 8601 time of publication. */
    createdAt: string;
    /** Hidden from tags and `latest`; still downloadable by exact version. */
    yanked: boolean;
    /** Downloads of its model.json. */
    downloads: number;
  }[];
  /** Tag name → version, as stored. */
  tags: Record<string, string>;
  /** What a bare reference resolves to; null when every version is yanked. */
  latest: string | null;
}

/** A model as stored: its document without `latest`, which the registry resolves. */
export type ModelRecord = Omit<ModelDocument, "latest">;

/** A version in a model's summary. */
export type VersionSummary = ModelDocument["versions"][number];

// These three are part of the SDK's public API, where every type must be
// spelled out (JSR's no-slow-types): the interfaces above are the types, and
// each schema is checked against its interface by its annotation.

/** The schema of {@linkcode VersionSummary}. */
export const VersionSummarySchema: z.ZodType<VersionSummary> = z.object({
  version: z.string(),
  createdAt: z.string().meta({ description: "ISO 8601 time of publication" }),
  yanked: z.boolean(),
  downloads: z.int(),
}).meta({ id: "VersionSummary" });

const modelRecordShape = {
  namespace: z.string(),
  name: z.string(),
  description: z.string().meta({ description: "From the latest version's card" }),
  task: z.string().meta({ description: "From the latest version's card" }),
  labels: z.array(z.string()).meta({ description: "From the latest version's card" }),
  updatedAt: z.string().meta({
    description: "ISO 8601 time of the last publish, tag move or yank",
  }),
  downloads: z.int().meta({ description: "Downloads of all its versions" }),
  versions: z.array(VersionSummarySchema).meta({ description: "Every version, oldest first" }),
  tags: z.record(z.string(), z.string()).meta({ description: "Tag name → version" }),
};

/** The schema of {@linkcode ModelRecord}. */
export const ModelRecordSchema: z.ZodType<ModelRecord> = z.object(modelRecordShape).meta({
  id: "ModelRecord",
});

/** The schema of {@linkcode ModelDocument}: `GET /api/models/{ns}/{name}`. */
export const ModelDocumentSchema: z.ZodType<ModelDocument> = z.object({
  ...modelRecordShape,
  latest: z.string().nullable().meta({
    description: "What a bare reference resolves to; null when every version is yanked",
  }),
}).meta({ id: "ModelDocument" });

/** `GET /api/models`. */
export const ModelList = z.object({
  items: z.array(ModelRecordSchema),
  nextCursor: z.string().nullable().meta({ description: "Pass as cursor for the next page" }),
}).meta({ id: "ModelList" });
/** A page of models. */
export type ModelList = z.infer<typeof ModelList>;

/** `GET /api/models/{ns}/{name}/{ref}` and the answer to a publish. */
export const VersionDocument = z.object({
  namespace: z.string(),
  name: z.string(),
  version: z.string().meta({ description: "The exact version the reference resolved to" }),
  reference: z.string().meta({ example: "zoo/lenet5@1.0.0" }),
  yanked: z.boolean(),
  createdAt: z.string(),
  downloads: z.int(),
  files: z.array(FileEntry),
  card: z.record(z.string(), z.unknown()),
  architecture: z.record(z.string(), z.unknown()).meta({
    description: "Shapes, parameters, strides, receptive fields, head kind and cut points",
  }),
  urls: z.object({ self: z.string(), modelJson: z.string(), page: z.string() }),
}).meta({ id: "VersionDocument" });
/** One version, as the API returns it. */
export type VersionDocument = z.infer<typeof VersionDocument>;

/** A TensorFlow.js LayersModel `model.json` whose weight paths point at blobs. */
export const ModelJsonDocument = z.looseObject({
  modelTopology: z.record(z.string(), z.unknown()),
  weightsManifest: z.array(z.looseObject({
    paths: z.array(z.string()),
    weights: z.array(z.looseObject({
      name: z.string(),
      shape: z.array(z.int()),
      dtype: z.string(),
    })),
  })),
}).meta({ id: "ModelJson" });

/** The model a write's answer names. */
const AnsweredModel = z.object({ namespace: z.string(), name: z.string() });

/** The answer to a tag move. */
export const TagDocument = AnsweredModel.extend({
  tag: z.string(),
  version: z.string(),
}).meta({ id: "TagDocument" });

/** The answer to a yank. */
export const YankDocument = AnsweredModel.extend({
  version: z.string(),
  yanked: z.boolean(),
}).meta({ id: "YankDocument" });

/** A stored blob. */
export const BlobInfo = z.object({
  digest: z.string(),
  size: z.int().meta({ description: "Bytes" }),
}).meta({ id: "BlobInfo" });
/** A stored blob. */
export type BlobInfo = z.infer<typeof BlobInfo>;

const LIMIT = "use a whole number from 1 to 100";

/** The query of `GET /api/models`. */
export const ListQuery = z.object({
  search: z.string().max(MAX_SEARCH_CHARS, {
    error: `Search text is over ${MAX_SEARCH_CHARS} characters: search for a shorter text`,
  }).optional().meta({ description: "Substring of name, description, task or labels" }),
  task: z.string().optional().meta({ description: "Exact task" }),
  sort: z.enum(["downloads", "updated"], {
    error: (iss) => `Invalid sort ${quoted(iss.input)}: use "downloads" or "updated"`,
  }).default("updated"),
  limit: z.coerce.number<string>({ error: LIMIT }).int({ error: LIMIT }).min(1, { error: LIMIT })
    .max(100, {
      error: LIMIT,
    }).default(20).meta({ description: "Models per page" }),
  cursor: z.string().optional().meta({ description: "nextCursor of the previous page" }),
});

/** The query of `POST /api/blobs`. */
export const UploadQuery = z.object({
  digest: Digest.optional().meta({
    description: "The digest the bytes must have; a stored blob is answered at once",
  }),
});

/**
 * Says what is wrong with one value, for a problem `detail`, from a zod issue
 * of the schemas above. Their messages come in three forms: a whole sentence
 * (`Invalid namespace "Zoo": use …`), used as is; `use …`, said of a query
 * or path value (`Invalid limit "0": use a whole number from 1 to 100`); and
 * what is wrong with a field of a body, after its path (`files[0].size must
 * be a non-negative integer`, `"files" must include "model.json"`).
 *
 * @param issue the issue
 * @param input what was validated, to quote the value a `use …` message is about
 * @returns the text
 *
 * @example A limit out of range, and a file size that is not a size
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { describeIssue, ListQuery, PublishRequest } from "./wire.ts";
 * const query = { limit: "0" };
 * const q = ListQuery.safeParse(query);
 * assertEquals(
 *   describeIssue(q.error!.issues[0]!, query),
 *   'Invalid limit "0": use a whole number from 1 to 100',
 * );
 * const body = { files: [{ path: "model.json", digest: `sha256:${"0".repeat(64)}`, size: -1 }] };
 * const p = PublishRequest.safeParse(body);
 * assertEquals(describeIssue(p.error!.issues[0]!, body), "files[0].size must be a non-negative integer");
 * ```
 */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const message = issue.message;
  if (/^[A-Z]/.test(message)) return message;
  if (message.startsWith("use ")) {
    let value: unknown = input;
    for (const key of path) value = (value as Record<string | number, unknown> | undefined)?.[key];
    return `Invalid ${path.join(".")} ${quoted(value)}: ${message}`;
  }
  if (path.length === 0) return message;
  const [first, ...rest] = path;
  // A message that names its field already ("card takes …") needs no path.
  if (rest.length === 0 && message.startsWith(`${first} `)) return message;
  const where = rest.length === 0 && message.startsWith("must")
    ? `"${first}"`
    : `${first}${rest.map((p) => typeof p === "number" ? `[${p}]` : `.${p}`).join("")}`;
  return `${where} ${message}`;
}
