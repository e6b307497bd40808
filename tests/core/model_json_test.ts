import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  checkModelJson as checkDocument,
  checkModelJsonNesting,
  jsonTextTooDeep,
  MAX_JSON_DEPTH,
  MAX_USER_METADATA_BYTES,
  type ModelJson,
  type WeightsManifestEntry,
} from "../../core/model_json.ts";
import { tfjsLayers } from "../../sdk/model_layers.ts";
import { readNsfwjsModel } from "../../zoo/nsfwjs/source.ts";

/** The whole check, as the registry runs it: layer classes and shapes by tfjs. */
function checkModelJson(json: unknown, files: ReadonlyMap<string, number>): string[] {
  return checkDocument(json, files, tfjsLayers);
}

/** A one-Dense model: 2x3 float32 kernel + 3 float32 bias = 36 bytes. */
function tiny(): Record<string, unknown> {
  return {
    format: "layers-model",
    modelTopology: {
      class_name: "Sequential",
      config: {
        name: "tiny",
        layers: [{
          class_name: "Dense",
          config: { name: "d", units: 3, batch_input_shape: [null, 2] },
        }],
      },
    },
    weightsManifest: [{
      paths: ["group1-shard1of1.bin"],
      weights: [
        { name: "d/kernel", shape: [2, 3], dtype: "float32" },
        { name: "d/bias", shape: [3], dtype: "float32" },
      ],
    }],
  };
}
const shard = new Map([["group1-shard1of1.bin", 36]]);

function only(problems: string[], includes: string): void {
  assertEquals(problems.length, 1, problems.join("\n"));
  assertStringIncludes(problems[0] ?? "", includes);
}

Deno.test("checkModelJson() accepts the real nsfwjs model.jsons with their real shard sizes", async () => {
  for (const name of ["mobilenet_v2", "inception_v3"] as const) {
    const { modelJson, weightData } = await readNsfwjsModel(name);
    const paths = modelJson.weightsManifest.flatMap((g) => g.paths);
    // Every shard but the last is full; the last holds the rest.
    const full = 4 * 1024 * 1024;
    const files = new Map(
      paths.map((p, i) => [
        p,
        i < paths.length - 1 ? full : weightData.byteLength - full * (paths.length - 1),
      ]),
    );
    assertEquals(checkModelJson(modelJson, files), [], name);
  }
});

Deno.test("checkModelJson() accepts a tiny valid model.json", () => {
  assertEquals(checkModelJson(tiny(), shard), []);
});

Deno.test("checkModelJson() rejects what is not a LayersModel model.json", () => {
  only(checkModelJson([], shard), "must be a JSON object, got an array");
  const noTopology = tiny();
  delete noTopology.modelTopology;
  only(checkModelJson(noTopology, shard), 'no "modelTopology"');
  const noManifest = tiny();
  delete noManifest.weightsManifest;
  only(checkModelJson(noManifest, shard), 'no "weightsManifest"');
  const graph = { ...tiny(), modelTopology: { node: [], versions: {} } };
  only(checkModelJson(graph, shard), 'must be an object with "class_name"');
  const dense = { ...tiny(), modelTopology: { class_name: "Dense", config: {} } };
  only(checkModelJson(dense, shard), 'class_name "Dense": expected "Sequential"');
});

Deno.test("checkModelJson() without a layer builder checks the document and its shards only", () => {
  const json = tiny();
  const layers = (json.modelTopology as { config: { layers: { class_name: string }[] } }).config
    .layers;
  layers[0]!.class_name = "MyAttention";
  assertEquals(checkDocument(json, shard), []);
  only(checkDocument(tiny(), new Map()), 'needs shard "group1-shard1of1.bin"');
  only(checkModelJson(json, shard), 'has class "MyAttention"');
});

Deno.test("checkModelJson() names a layer class tfjs does not know, nested models included", () => {
  const json = tiny();
  const inner = {
    class_name: "Sequential",
    config: { name: "inner", layers: [{ class_name: "MyAttention", config: { name: "att" } }] },
  };
  (json.modelTopology as { config: { layers: unknown[] } }).config.layers.push(inner);
  only(checkModelJson(json, shard), 'Nested model "inner" layer "att" has class "MyAttention"');
});

Deno.test("checkModelJson() requires every shard and exactly the bytes the weights take", () => {
  only(checkModelJson(tiny(), new Map()), 'needs shard "group1-shard1of1.bin"');
  only(
    checkModelJson(tiny(), new Map([["group1-shard1of1.bin", 40]])),
    'weights take 36 bytes but its shards "group1-shard1of1.bin" hold 40',
  );
});

Deno.test("checkModelJson() counts quantized weights at their stored dtype", () => {
  const json = tiny();
  const [group] = json.weightsManifest as { weights: Record<string, unknown>[] }[];
  for (const w of group?.weights ?? []) w.quantization = { dtype: "uint8", min: 0, scale: 1 };
  assertEquals(checkModelJson(json, new Map([["group1-shard1of1.bin", 9]])), []);
  for (const w of group?.weights ?? []) w.quantization = { dtype: "float16" };
  assertEquals(checkModelJson(json, new Map([["group1-shard1of1.bin", 18]])), []);
});

Deno.test("checkModelJson() rejects string weights, unknown dtypes and a weight listed twice", () => {
  const json = tiny();
  const [group] = json.weightsManifest as { weights: Record<string, unknown>[] }[];
  const weights = group?.weights ?? [];
  weights.push({ name: "d/kernel", shape: [0], dtype: "float32" });
  only(checkModelJson(json, shard), 'Weight "d/kernel" is listed twice');
  weights.pop();
  weights.push({ name: "vocab", shape: [2], dtype: "string" });
  only(checkModelJson(json, shard), 'Weight "vocab" has dtype "string"');
  weights.pop();
  weights.push({ name: "x", shape: [1], dtype: "complex64" });
  only(checkModelJson(json, shard), 'Weight "x" has dtype "complex64"');
});

Deno.test("checkModelJson() accepts only plain relative shard paths", () => {
  for (const path of ["../secret.bin", "/etc/passwd", "https://example.com/w.bin", "a/./b.bin"]) {
    const json = tiny();
    const [group] = json.weightsManifest as { paths: string[] }[];
    if (group) group.paths = [path];
    only(checkModelJson(json, new Map([[path, 36]])), "must be a relative file name");
  }
  const json = tiny();
  const [group] = json.weightsManifest as { paths: string[] }[];
  if (group) group.paths = ["weights/part1.bin"];
  assertEquals(checkModelJson(json, new Map([["weights/part1.bin", 36]])), []);
});

/** A model.json of layers built by tfjs, saved with their real weight specs and one shard. */
async function saved(model: tf.LayersModel): Promise<{ json: ModelJson; bytes: number }> {
  let out: { json: ModelJson; bytes: number } | undefined;
  await model.save(tf.io.withSaveHandler((a) => {
    out = {
      json: {
        format: "layers-model",
        modelTopology: a.modelTopology as object,
        weightsManifest: [{ paths: ["w.bin"], weights: a.weightSpecs as WeightsManifestEntry[] }],
      },
      bytes: tf.io.CompositeArrayBuffer.join(a.weightData!).byteLength,
    };
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  model.dispose();
  return out!;
}

function layersOf(json: ModelJson): Record<string, unknown>[] {
  return (json.modelTopology as { config: { layers: { config: Record<string, unknown> }[] } })
    .config.layers.map((l) => l.config);
}

/** What the checks must leave behind: no tensor and no variable. */
function engineCounts(): [number, number] {
  return [tf.memory().numTensors, Object.keys(tf.engine().registeredVariables).length];
}

Deno.test("checkModelJson() builds the layers and names the layer and both shapes of a weight that does not fit", async () => {
  const { json, bytes } = await saved(tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [8], units: 16, name: "hidden" }),
      tf.layers.dense({ units: 4, name: "out" }),
    ],
  }));
  const files = new Map([["w.bin", bytes]]);
  const before = engineCounts();
  assertEquals(checkModelJson(json, files), []);
  // The topology now says 5 units while the manifest and shard hold a [16,4] kernel.
  const out = layersOf(json)[1]!;
  out.units = 5;
  const problems = checkModelJson(json, files);
  assertEquals(problems.length, 2, problems.join("\n"));
  assertStringIncludes(
    problems[0]!,
    'Layer "out" (Dense) expects weight "out/kernel" of shape [16,5], but the weights manifest gives [16,4]',
  );
  assertStringIncludes(
    problems[1]!,
    'expects weight "out/bias" of shape [5], but the weights manifest gives [4]',
  );
  out.units = 4;
  // A weight the layers do not have, and one the manifest leaves out.
  const [group] = json.weightsManifest;
  group!.weights[3]!.name = "other/bias";
  const renamed = checkModelJson(json, files);
  assertStringIncludes(
    renamed[0]!,
    'Weight "other/bias" of the weights manifest belongs to no layer',
  );
  assertStringIncludes(
    renamed[1]!,
    'Layer "out" (Dense) needs weight "out/bias" of shape [4], which the weights manifest does not list',
  );
  assertEquals(engineCounts(), before, "the built layers are released");
});

Deno.test("checkModelJson() names a layer whose config tfjs cannot build, and leaves nothing allocated", async () => {
  const { json, bytes } = await saved(tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: "c1" }),
      tf.layers.conv2d({ filters: 2, kernelSize: 3, name: "c2" }),
    ],
  }));
  const before = engineCounts();
  layersOf(json)[1]!.kernel_size = "y";
  only(
    checkModelJson(json, new Map([["w.bin", bytes]])),
    'TensorFlow.js cannot build the model from its topology at layer "c2" (Conv2D): BaseConv expects config.kernelSize to be number or number[]',
  );
  assertEquals(engineCounts(), before, "what the failed build made is released");
});

Deno.test("checkModelJson() refuses a model.json nested deeper than 64 levels without overflowing the stack", () => {
  const deep = (n: number) => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = { a: v };
    return v;
  };
  const json = tiny();
  json.userDefinedMetadata = deep(200_000);
  only(checkModelJson(json, shard), "Its userDefinedMetadata nests more than 64 levels");
  json.userDefinedMetadata = deep(MAX_JSON_DEPTH - 1);
  assertEquals(checkModelJson(json, shard), []);
  // 30,000 nested Sequential models.
  let model: unknown = { class_name: "Dense", config: { name: "d", units: 1 } };
  for (let i = 0; i < 30_000; i++) {
    model = { class_name: "Sequential", config: { name: `s${i}`, layers: [model] } };
  }
  const nested = { ...tiny(), modelTopology: model };
  only(
    checkModelJson(nested, shard),
    "model.json nests more than 64 levels of objects and arrays (at modelTopology.config.layers[0].config.layers…)",
  );
  // The same limit on the text, before it is parsed.
  const text = JSON.stringify({ ...tiny(), userDefinedMetadata: "x" }).replace(
    '"x"',
    "[".repeat(200_000) + "]".repeat(200_000),
  );
  assertStringIncludes(
    checkModelJsonNesting(text) ?? "",
    "Its userDefinedMetadata nests more than 64 levels",
  );
  assertEquals(checkModelJsonNesting(JSON.stringify(tiny())), null);
  // Brackets inside strings do not count.
  assertEquals(jsonTextTooDeep(`{"a":"${"[".repeat(100)}"}`, 2), null);
  assertEquals(jsonTextTooDeep('{"a":[{"b":{}}],"c":{"d":[[1]]}}', 3), ["a", 0, "b"]);
  assertEquals(jsonTextTooDeep('{"a":[1,{}],"c":{"d":[[[1]]]}}', 4), ["c", "d", 0, 0]);
});

Deno.test("checkModelJson() refuses userDefinedMetadata over 1 MiB", () => {
  const json = tiny();
  json.userDefinedMetadata = { blob: "x".repeat(MAX_USER_METADATA_BYTES) };
  only(
    checkModelJson(json, shard),
    `Its userDefinedMetadata takes ${MAX_USER_METADATA_BYTES + 11} bytes, over the limit`,
  );
});
