/**
 * `sdk/finetune.ts --resume` as a user runs it: a fine-tune in a subprocess
 * killed with SIGKILL after its second epoch's checkpoint, then resumed,
 * ends with the weights, metrics and test accuracy of an uninterrupted run
 * with the same seed; and a resumed features run, which keeps no per-epoch
 * checkpoints, reads its codes from the cache and leaves each epoch once in
 * `metrics.jsonl`.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import type { EpochMetrics } from "../../../sdk/types.ts";
import { finetuneCommand, flags, runFinetune as run } from "../../_helpers/cli.ts";
import { startFinetuneRegistry } from "../../_helpers/registry.ts";
import { tempDir } from "../../_helpers/temp.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function metrics(dir: string): Promise<EpochMetrics[]> {
  return (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l) as EpochMetrics);
}

async function weights(dir: string): Promise<Float32Array> {
  return new Float32Array((await Deno.readFile(join(dir, "group1-shard1of1.bin"))).buffer);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assertEquals(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

Deno.test("finetune --resume after a SIGKILL ends bit-identical to an uninterrupted run with the same seed", async () => {
  await using reg = await startFinetuneRegistry();
  await using root = await tempDir("finetune_resume_");
  const args = (out: string) => [
    ...flags({
      model: "zoo/lenet5",
      data: "fashion-mnist?perClass=40",
      strategy: "partial",
      "head-epochs": 1,
      epochs: 5,
      "batch-size": 16,
      patience: 10,
      seed: 3,
      device: "cpu",
    }),
    ...reg.flags,
    ...flags({ out }),
  ];
  const straightDir = join(root.path, "straight");
  const straight = await run(args(straightDir));
  assertEquals(straight.code, 0, straight.stderr);

  const killedDir = join(root.path, "killed");
  const child = finetuneCommand(args(killedDir)).spawn();
  const stderr = new Response(child.stderr).text();
  const stdout = new Response(child.stdout).text();
  const second = join(killedDir, "checkpoints", "epoch-0002");
  let finished = false;
  child.status.then(() => (finished = true));
  while (!finished && !(await exists(second))) await new Promise((r) => setTimeout(r, 5));
  try {
    child.kill("SIGKILL");
  } catch {
    finished = true;
  }
  assert(!finished, `the run ended before it could be killed: ${await stderr}`);
  const status = await child.status;
  await Promise.all([stderr, stdout]);
  assertEquals(status.signal, "SIGKILL");
  assert(!(await exists(join(killedDir, "model.json"))), "the killed run wrote no final model");
  const saved = [];
  for await (const e of Deno.readDir(join(killedDir, "checkpoints"))) saved.push(e.name);
  assert(!saved.includes("epoch-0006"), `killed too late: ${saved}`);

  const resumed = await run([...args(killedDir), "--resume"]);
  assertEquals(resumed.code, 0, resumed.stderr);
  assert(!/^epoch 1\//m.test(resumed.stderr), `the resumed run started over:\n${resumed.stderr}`);
  assertMatch(resumed.stderr, /^epoch 6\/6 \(all\)/m);

  const diff = maxAbsDiff(await weights(killedDir), await weights(straightDir));
  assertEquals(diff, 0, `resumed weights differ from the uninterrupted run's by ${diff}`);
  assertEquals(await weights(killedDir), await weights(straightDir), "bit for bit");
  const [a, b] = [await metrics(straightDir), await metrics(killedDir)];
  assertEquals(b.map((m) => [m.epoch, m.phase]), a.map((m) => [m.epoch, m.phase]));
  assertEquals(a.map((m) => m.epoch), [1, 2, 3, 4, 5, 6]);
  for (const [i, m] of b.entries()) {
    assertEquals(m.trainLoss, a[i]!.trainLoss, `epoch ${m.epoch} train loss`);
    assertEquals(m.valLoss, a[i]!.valLoss, `epoch ${m.epoch} val loss`);
  }
  const card = async (dir: string) => JSON.parse(await Deno.readTextFile(join(dir, "card.json")));
  const [ca, cb] = [await card(straightDir), await card(killedDir)];
  assertEquals(cb.metrics, ca.metrics, "the same test accuracy");
});

Deno.test("finetune --resume of a features run reads the cached codes and keeps each epoch once in metrics.jsonl", async () => {
  await using reg = await startFinetuneRegistry();
  await using out = await tempDir("finetune_resume_features_");
  const args = [
    ...flags({
      model: "zoo/lenet5",
      data: "fashion-mnist?perClass=10",
      strategy: "features",
      classifier: "softmax",
      epochs: 6,
      patience: 10,
      device: "cpu",
    }),
    ...reg.flags,
    ...flags({ out: out.path }),
  ];
  const first = await run(args);
  assertEquals(first.code, 0, first.stderr);
  assertMatch(first.stderr, /codes: \d+ of "fashion-mnist \(train\)" computed/);
  assertMatch(first.stderr, /codes: 84 values per image \(a vector: nothing to pool\) at "fc2"/);
  assertMatch(first.stdout, /codes\s+.*84/, "the final table says what the codes are");
  const before = await metrics(out.path);

  const again = await run([...args, "--resume"]);
  assertEquals(again.code, 0, again.stderr);
  assertMatch(again.stderr, /resume: the features strategy keeps no per-epoch checkpoints/);
  assert(!/codes: \d+ .* computed/.test(again.stderr), again.stderr);
  assertMatch(again.stderr, /codes: \d+ of "fashion-mnist \(train\)" read from the cache/);
  const after = await metrics(out.path);
  assertEquals(after.map((m) => m.epoch), before.map((m) => m.epoch));
  assertEquals(after.map((m) => m.trainLoss), before.map((m) => m.trainLoss));
});
