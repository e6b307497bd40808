import { assert, assertEquals, assertThrows } from "@std/assert";
import { MAX_JOBS, POLL_MS, SimdPool } from "../../../sdk/devices/wasm/simd/_pool.ts";
import { SHARED } from "../../../sdk/devices/wasm/simd/kernels_wasm.ts";

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The SIMD kernels on a fresh shared memory, with a pool of `workers` threads. */
async function setup(workers: number) {
  const memory = new WebAssembly.Memory({ initial: 64, maximum: 1024, shared: true });
  const bytes = decode(SHARED);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const fn = instance.exports as Record<string, (...a: number[]) => void>;
  const pool = new SimdPool(memory, bytes, Object.keys(fn), workers);
  // Workers take jobs once their module is compiled.
  for (let i = 0; i < 500 && pool.ready < workers; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(pool.ready, workers, "the workers did not start");
  return { memory, fn, pool };
}

Deno.test("the SIMD pool runs every job once, some on its workers, in calls of more than MAX_JOBS jobs", async () => {
  const { memory, fn, pool } = await setup(2);
  const n = 1 << 20, jobs = 3 * MAX_JOBS + 5, per = 4 * Math.ceil(n / jobs / 4);
  const x = 1024, y = x + 4 * n;
  memory.grow(Math.ceil((y + 4 * n) / 65536));
  const f32 = new Float32Array(memory.buffer);
  const list: number[][] = [];
  for (let i0 = 0; i0 < n; i0 += per) list.push([x + 4 * i0, y + 4 * i0, Math.min(per, n - i0)]);
  // A worker claims jobs while this thread runs its own; retried because a
  // loaded machine may deschedule the workers for a whole call.
  let onThisThread = list.length;
  for (let attempt = 0; attempt < 20 && onThisThread === list.length; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < n; i++) f32[x / 4 + i] = (i % 7) - 3 + attempt;
    f32.fill(NaN, y / 4, y / 4 + n);
    onThisThread = 0;
    pool.warm();
    pool.run(
      (args) => {
        onThisThread++;
        fn.relu!(...args);
      },
      "relu",
      list,
    );
    for (let i = 0; i < n; i++) {
      const want = Math.max(0, (i % 7) - 3 + attempt);
      if (f32[y / 4 + i] !== want) assertEquals(f32[y / 4 + i], want, `element ${i}`);
    }
  }
  assert(onThisThread < list.length, "the workers ran no job in 20 calls");
});

Deno.test("a job that traps makes the call throw, and the pool keeps working after it", async () => {
  const { memory, fn, pool } = await setup(1);
  // A pointer past the end of memory traps on whichever thread runs it.
  const past = memory.buffer.byteLength;
  assertThrows(() =>
    pool.run((args) => fn.relu!(...args), "relu", Array.from({ length: 8 }, () => [past, past, 64]))
  );
  const f32 = new Float32Array(memory.buffer);
  f32.set([-1, 2, -3, 4], 16);
  pool.run((args) => fn.relu!(...args), "relu", [[64, 128, 2], [72, 136, 2]]);
  assertEquals(Array.from(f32.subarray(32, 36)), [0, 2, 0, 4]);
});

Deno.test("an idle worker falls asleep after polling, and warm() wakes it to poll again", async () => {
  // One worker: with more, the busy wait below keeps a core, and a second
  // worker may wake after the first one's polling ended.
  const { pool } = await setup(1);
  const until = async (want: number, what: string) => {
    for (let i = 0; i < 500 && pool.asleep !== want; i++) {
      await new Promise((r) => setTimeout(r, 2));
    }
    assertEquals(pool.asleep, want, what);
  };
  await until(1, `the idle worker did not fall asleep after polling ${POLL_MS} ms`);
  // A worker flags its sleep just before it waits; warm() is a hint, and a
  // notify sent between the two is lost. Give the worker time to wait.
  await new Promise((r) => setTimeout(r, 50));
  pool.warm();
  // Awake, it polls for POLL_MS only: watch without yielding.
  const deadline = performance.now() + 100;
  while (pool.asleep > 0 && performance.now() < deadline);
  assertEquals(pool.asleep, 0, "warm() did not wake the sleeping worker");
  await until(1, "the woken worker did not fall asleep again");
});
