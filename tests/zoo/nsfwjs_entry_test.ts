import * as tf from "@tensorflow/tfjs";
import * as nsfwjs from "nsfwjs";
import { assert, assertEquals } from "@std/assert";
import { checkModelJson } from "../../core/model_json.ts";
import { tfjsLayers } from "../../sdk/model_layers.ts";
import { zooEntries, type ZooEntry } from "../../zoo/mod.ts";

await tf.setBackend("cpu");

function loadEntry(entry: ZooEntry): Promise<tf.LayersModel> {
  const modelJson = JSON.parse(new TextDecoder().decode(entry.files[0]!.bytes)) as tf.io.ModelJSON;
  return tf.loadLayersModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: concat(entry.files.filter((f) => f.path.endsWith(".bin")).map((f) => f.bytes)),
  }));
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}

Deno.test("the imported MobileNetV2 predicts what nsfwjs's own API predicts for the same image", async () => {
  const [entry] = await zooEntries({ only: ["mobilenet-v2"] });
  const ours = await loadEntry(entry!);
  const theirs = await nsfwjs.load("MobileNetV2");
  // A deterministic 224x224 RGB image with values 0..255, as nsfwjs.infer() takes it.
  const image = tf.tidy(() =>
    tf.mul(tf.add(tf.sin(tf.range(0, 224 * 224 * 3).div(97)), 1), 127.5).reshape([224, 224, 3])
      .round() as tf.Tensor3D
  );
  try {
    const expected = theirs.infer(image) as tf.Tensor;
    const got = tf.tidy(() => ours.predict(image.div(255).expandDims(0)) as tf.Tensor);
    const [e, g] = [await expected.data(), await got.data()];
    tf.dispose([expected, got]);
    assertEquals(g.length, 5);
    const maxDiff = Math.max(...Array.from(g, (v, i) => Math.abs(v - e[i]!)));
    assert(maxDiff <= 1e-5, `max abs diff ${maxDiff} > 1e-5`);
    const classified = await theirs.classify(image, 5);
    for (const { className, probability } of classified) {
      const i = (entry!.card.labels as string[]).indexOf(className);
      assert(Math.abs(probability - g[i]!) <= 1e-5, `${className}: ${probability} vs ${g[i]}`);
    }
  } finally {
    image.dispose();
    ours.dispose();
    theirs.model.dispose();
  }
});

Deno.test("both nsfwjs entries keep the shipped uint8 quantization and pass the registry's checks", async () => {
  const entries = await zooEntries({ only: ["mobilenet-v2", "inception-v3"] });
  assertEquals(entries.map((e) => e.name), ["mobilenet-v2", "inception-v3"]);
  for (const entry of entries) {
    const modelJson = JSON.parse(new TextDecoder().decode(entry.files[0]!.bytes));
    const sizes = new Map(entry.files.slice(1).map((f) => [f.path, f.bytes.byteLength]));
    assertEquals(checkModelJson(modelJson, sizes, tfjsLayers), [], entry.name);
    const weights = modelJson.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
    assert(
      weights.every((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === "uint8"),
    );
    assert(entry.files.some((f) => f.path === "README.md"));
    const { card } = entry;
    assertEquals(card.labels, ["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]);
    assertEquals(card.license, "MIT");
    assertEquals(card.task, "image-classification");
    const size = entry.name === "mobilenet-v2" ? 224 : 299;
    assertEquals(card.preprocessing, {
      height: size,
      width: size,
      channels: 3,
      range: [0, 1],
      channelOrder: "rgb",
      // nsfwjs resizes with aligned corners; the SDK's loaders follow this field.
      alignCorners: true,
      resize: (card.preprocessing as { resize: string }).resize,
    });
    assert(String(card.source).includes("npm:nsfwjs@4.4.0"));
    const readme = new TextDecoder().decode(entry.files.find((f) => f.path === "README.md")!.bytes);
    assert(readme.includes("Not for: identifying or recognizing people"));
    assert(readme.includes(`zoo/${entry.name}@1.0.0`));
  }
});
