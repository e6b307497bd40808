/**
 * Publishing a version: the checks every new version passes, whether it
 * arrives over HTTP or from the zoo's seeding, then one atomic store write.
 *
 * @module
 */
import { analyze } from "../core/arch/analyze.ts";
import { checkModelJson, checkModelJsonNesting } from "../core/model_json.ts";
import { tfjsLayers } from "../sdk/model_layers.ts";
import { HttpProblem } from "./problem.ts";
import {
  ConflictError,
  type FileEntry,
  type NewVersion,
  type Store,
  type VersionRecord,
} from "./storage/store.ts";

/** The largest model.json the registry parses. */
export const MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;

/** Reads a whole stream up to a byte limit. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > limit) throw new HttpProblem(413, `${what} is over the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Validates the uploaded files of a new version and computes its architecture. */
async function validateVersion(
  store: Store,
  files: FileEntry[],
): Promise<{ architecture: Record<string, unknown> }> {
  const missing: string[] = [];
  for (const f of files) {
    const info = await store.blobs.stat(f.digest);
    if (!info) {
      missing.push(`"${f.path}" (${f.digest}) has not been uploaded: POST it to /api/blobs first`);
    } else if (info.size !== f.size) {
      missing.push(
        `"${f.path}" is listed with ${f.size} bytes but blob ${f.digest} has ${info.size}`,
      );
    }
  }
  if (missing.length > 0) {
    throw new HttpProblem(422, `The version's files are incomplete: ${missing[0]}`, {
      errors: missing,
    });
  }
  const entry = files.find((f) => f.path === "model.json")!;
  if (entry.size > MAX_MODEL_JSON_BYTES) {
    throw new HttpProblem(
      422,
      `model.json is ${entry.size} bytes, over the limit of ${MAX_MODEL_JSON_BYTES}`,
    );
  }
  const stream = await store.blobs.read(entry.digest);
  if (!stream) throw new HttpProblem(422, `model.json blob ${entry.digest} vanished`);
  const text = new TextDecoder().decode(await readAll(stream, MAX_MODEL_JSON_BYTES, "model.json"));
  // On the text, before parsing builds the whole nested structure in memory.
  const deep = checkModelJsonNesting(text);
  if (deep) {
    throw new HttpProblem(422, `model.json is not a valid TensorFlow.js LayersModel: ${deep}`);
  }
  let modelJson: unknown;
  try {
    modelJson = JSON.parse(text);
  } catch (e) {
    throw new HttpProblem(422, `model.json is not valid JSON: ${(e as Error).message}`);
  }
  const sizes = new Map(files.filter((f) => f.path !== "model.json").map((f) => [f.path, f.size]));
  const problems = checkModelJson(modelJson, sizes, tfjsLayers);
  if (problems.length > 0) {
    throw new HttpProblem(
      422,
      `model.json is not a valid TensorFlow.js LayersModel: ${problems[0]}`,
      {
        errors: problems,
      },
    );
  }
  try {
    return {
      architecture: analyze(modelJson as Parameters<typeof analyze>[0]) as unknown as Record<
        string,
        unknown
      >,
    };
  } catch (e) {
    throw new HttpProblem(
      422,
      `Cannot analyze the architecture of model.json: ${(e as Error).message}`,
    );
  }
}

/**
 * Validates a version whose blobs are stored, computes its architecture and
 * records it atomically.
 *
 * @param store the store holding the blobs
 * @param v the version without its architecture
 * @returns the stored version
 * @throws {HttpProblem} 422 when invalid, 409 when the version exists
 */
export async function publishVersion(
  store: Store,
  v: Omit<NewVersion, "architecture">,
  signal?: AbortSignal,
): Promise<VersionRecord> {
  const id = `${v.namespace}/${v.name}@${v.version}`;
  const conflict = () =>
    new HttpProblem(409, `Version "${id}" exists: versions are immutable; publish a new version`);
  if (await store.getVersion(v.namespace, v.name, v.version)) throw conflict();
  const { architecture } = await validateVersion(store, v.files);
  // A request answered 503 meanwhile, or an interrupted seed, stores nothing.
  signal?.throwIfAborted();
  try {
    return await store.publish({ ...v, architecture });
  } catch (e) {
    if (e instanceof ConflictError) throw conflict();
    throw e;
  }
}
