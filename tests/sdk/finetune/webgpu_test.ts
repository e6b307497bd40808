/**
 * fineTune() on the webgpu device reads tensors back only asynchronously.
 * Deno's WebGPU happens to answer `dataSync()` today, but a browser's does
 * not, and a synchronous read stalls the GPU queue; so the test makes the
 * backend's `readSync` throw and runs every strategy through it (codes,
 * linear classifier, head phase, fine-tuning with validation, evaluation,
 * per-epoch checkpoints and the final checkpoint).
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertThrows } from "@std/assert";
import { join } from "node:path";
import { selectDevice } from "../../../sdk/devices/select.ts";
import { fineTune, type FineTuneTraining } from "../../../sdk/finetune/fine_tune.ts";
import type { ResolvedStrategy } from "../../../sdk/types.ts";
import { lenet5 } from "../../../zoo/_recipes.ts";

if (Deno.env.get("XDG_RUNTIME_DIR") === undefined) {
  Deno.env.set("XDG_RUNTIME_DIR", await Deno.makeTempDir({ prefix: "zoo-xdg-" }));
}
const adapter = await navigator.gpu?.requestAdapter().catch(() => null) ?? null;

Deno.test({
  name: "fineTune() on webgpu trains every strategy with asynchronous reads only",
  ignore: adapter === null,
}, async () => {
  await selectDevice("webgpu", { training: true });
  const backend = tf.findBackend("webgpu") as unknown as { readSync: (id: object) => unknown };
  const readSync = backend.readSync;
  const syncReads: string[] = [];
  backend.readSync = () => {
    syncReads.push(new Error("readSync").stack ?? "");
    throw new Error("a synchronous read on webgpu");
  };
  const out = await Deno.makeTempDir({ prefix: "finetune_webgpu_" });
  try {
    // The trap catches what it is meant to: dataSync, arraySync and bufferSync all read through it.
    const probe = tf.ones([2]);
    assertThrows(() => probe.dataSync(), Error, "a synchronous read on webgpu");
    assertThrows(() => probe.arraySync(), Error, "a synchronous read on webgpu");
    probe.dispose();
    syncReads.length = 0;
    const cases: [ResolvedStrategy | "features", FineTuneTraining][] = [
      ["features", { epochs: 3 }],
      ["partial", { epochs: 1, headEpochs: 1 }],
      ["full", { epochs: 1 }],
    ];
    for (const [strategy, extra] of cases) {
      const base = lenet5(1);
      const lines: string[] = [];
      const run = await fineTune({
        model: base,
        data: "fashion-mnist?perClass=4",
        strategy: strategy as "features" | "partial" | "full",
        device: "webgpu",
        training: { batchSize: 16, patience: 5, ...extra },
        output: { cacheDir: join(out, "codes"), outDir: join(out, strategy) },
        callbacks: { log: (l) => lines.push(l) },
      });
      assertEquals(run.device.backend, "webgpu", lines.join("\n"));
      assertEquals(tf.getBackend(), "webgpu");
      assert(run.testAccuracy !== undefined && run.testAccuracy >= 0, strategy);
      assert(run.history.every((m) => Number.isFinite(m.trainLoss)), JSON.stringify(run.history));
      run.model.dispose();
      base.dispose();
    }
    assertEquals(syncReads, [], "no synchronous reads");
  } finally {
    backend.readSync = readSync;
    await Deno.remove(out, { recursive: true });
    await tf.setBackend("cpu");
  }
});
