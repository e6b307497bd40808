import { assertEquals, assertStringIncludes } from "@std/assert";
import { checkModelJson } from "../../sdk/model_json.ts";
import { readNsfwjsModel } from "../../zoo/nsfwjs/source.ts";

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
