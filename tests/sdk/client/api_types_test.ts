/**
 * The client's wire types are the registry's: the documents the client reads
 * are the types openapi-typescript generated from the registry's schemas
 * (`core/api_types.ts`), and the model document the server builds from
 * `core/wire.ts` is the same type. The checks are type-level equalities, so a
 * drift fails `deno check` (and with it this test), and a live registry's
 * documents are read through them.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { assertEquals } from "@std/assert";
import type { components } from "../../../core/api_types.ts";
import {
  type ModelDocument as WireModelDocument,
  VersionDocument as VersionDocumentSchema,
} from "../../../core/wire.ts";
import type {
  FileDocument,
  ModelDocument,
  ResponseJson,
  VersionDocument,
} from "../../../sdk/client/mod.ts";
import { ZooClient } from "../../../sdk/client/mod.ts";
import { denseModel, startRegistry } from "./_registry.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
type Schemas = components["schemas"];

// Each line fails to type-check when the two sides differ in any field.
const checks: Record<string, true> = {
  modelDocumentIsTheWireOne: true satisfies Equal<ModelDocument, WireModelDocument>,
  wireModelDocumentIsTheGeneratedOne: true satisfies Equal<
    WireModelDocument,
    Schemas["ModelDocument"]
  >,
  versionDocumentIsTheGeneratedOne: true satisfies Equal<
    VersionDocument,
    Schemas["VersionDocument"]
  >,
  fileDocumentIsTheGeneratedOne: true satisfies Equal<FileDocument, Schemas["FileEntry"]>,
  getVersionAnswersAVersionDocument: true satisfies Equal<
    ResponseJson<"getVersion">,
    VersionDocument
  >,
  getModelAnswersAModelDocument: true satisfies Equal<ResponseJson<"getModel">, ModelDocument>,
  publishAnswersAVersionDocument: true satisfies Equal<
    ResponseJson<"publishVersion", 201>,
    VersionDocument
  >,
  noJsonBodyIsNever: true satisfies Equal<ResponseJson<"getVersion", 404>, never>,
};

Deno.test("the client's document types are the ones generated from the registry's schemas", () => {
  assertEquals(Object.values(checks).every((v) => v), true);
});

// Every key of the model document, checked both ways by the compiler.
const MODEL_KEYS = {
  namespace: true,
  name: true,
  description: true,
  task: true,
  labels: true,
  updatedAt: true,
  downloads: true,
  versions: true,
  tags: true,
  latest: true,
} as const satisfies Record<keyof ModelDocument, true>;

Deno.test("a live registry's documents have exactly the fields the client's types name", async () => {
  await tf.setBackend("cpu");
  await using reg = await startRegistry();
  const cacheDir = await Deno.makeTempDir({ prefix: "zoo-cache-" });
  const client = new ZooClient({ url: reg.url, cacheDir, token: reg.token, progress: false });
  const model = denseModel();
  try {
    const published = await client.publish(model, { name: "zoo/typed", version: "1.0.0" });
    // strict(): an extra or missing field the generated type does not know fails here.
    VersionDocumentSchema.strict().parse(published.version);
    VersionDocumentSchema.strict().parse(await client.resolve("zoo/typed@1.0.0"));
    const doc = await client.getModel("zoo/typed");
    assertEquals(Object.keys(doc).sort(), Object.keys(MODEL_KEYS).sort());
    assertEquals(doc.latest, "1.0.0");
  } finally {
    model.dispose();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
