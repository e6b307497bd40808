import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ZooClient } from "../../sdk/client/mod.ts";
import { zooEntries } from "../../zoo/mod.ts";
import { main, publishZoo } from "../../zoo/publish.ts";
import { startRegistry } from "../registry/_helpers.ts";

await tf.setBackend("cpu");

Deno.test("publishZoo() publishes the zoo into a registry, and a second run skips every version", async () => {
  const reg = await startRegistry();
  const cacheDir = await Deno.makeTempDir({ prefix: "zoo-cache-" });
  try {
    const entries = await zooEntries({ only: ["lenet5", "mobilenet-v2"] });
    const client = new ZooClient({ url: reg.url, token: reg.token, cacheDir, progress: false });
    const lines: string[] = [];
    const first = await publishZoo(client, entries, { log: (l) => lines.push(l) });
    assertEquals(first.map((o) => [o.reference, o.status]), [
      ["zoo/lenet5@1.0.0", "published"],
      ["zoo/mobilenet-v2@1.0.0", "published"],
    ]);
    const second = await publishZoo(client, entries, { log: (l) => lines.push(l) });
    assertEquals(second.map((o) => o.status), ["skipped", "skipped"]);
    assertEquals(lines.at(-1), "zoo/mobilenet-v2@1.0.0: already published, skipped");

    const doc = await client.resolve("zoo/lenet5@1.0.0");
    assertEquals(doc.card, entries[0]!.card);
    assertEquals(doc.files.map((f) => f.path).sort(), [
      "README.md",
      "group1-shard1of1.bin",
      "model.json",
    ]);
    const lenet = await client.loadModel("zoo/lenet5@1.0.0");
    const y = tf.tidy(() => lenet.predict(tf.zeros([1, 28, 28, 1])) as tf.Tensor);
    assertEquals(y.shape, [1, 10]);
    tf.dispose([y]);
    lenet.dispose();

    // Plain tfjs reads the quantized MobileNetV2 straight from the registry.
    const mobilenet = await tf.loadLayersModel(
      `${reg.url}/api/models/zoo/mobilenet-v2/1.0.0/model.json`,
    );
    assertEquals(mobilenet.outputs[0]?.shape, [null, 5]);
    mobilenet.dispose();
  } finally {
    await reg.close();
    await Deno.remove(cacheDir, { recursive: true });
    await Deno.remove(reg.dataDir, { recursive: true });
  }
});

Deno.test("zoo:publish needs a token and reports each entry", async () => {
  await assertRejects(() => main(["--url", "http://127.0.0.1:9"]), RangeError, "no token");
  const reg = await startRegistry();
  try {
    const outcomes = await main([
      "--url",
      reg.url,
      "--token",
      reg.token,
      "--only",
      "vggish",
      "--no-imported",
    ]);
    assertEquals(outcomes.map((o) => o.status), ["published"]);
    assert(outcomes[0]!.uploaded >= 3);
    const again = await main(["--url", reg.url, "--token", reg.token, "--only", "vggish"]);
    assertEquals(again.map((o) => o.status), ["skipped"]);
  } finally {
    await reg.close();
    await Deno.remove(reg.dataDir, { recursive: true });
  }
});
