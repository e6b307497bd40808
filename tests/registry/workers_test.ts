/**
 * `registry/main.ts --workers N`: N processes serve one port (SO_REUSEPORT)
 * on one store, and stop together, even when the first is killed.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { freePort } from "../_helpers/cli.ts";
import { type MainProcess, startMain } from "./_main.ts";

async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** Starts two workers; resolves once both said they listen. */
function startTwo(data: string, port: number): Promise<MainProcess> {
  return startMain(
    ["--port", String(port), "--data", data, "--no-seed", "--workers", "2"],
    (out) => out.includes("Registry on") && out.includes("Registry worker on"),
    "inherit",
  );
}

Deno.test("--workers 2 serves one port from two processes that stop together on SIGTERM", async () => {
  const data = await Deno.makeTempDir({ prefix: "zoo-workers-" });
  const port = freePort();
  try {
    const { child, printed, drained } = await startTwo(data, port);
    assertStringIncludes(printed(), "2 processes");
    const statuses = await Promise.all(Array.from({ length: 200 }, async () => {
      const r = await fetch(`http://127.0.0.1:${port}/api/models`);
      await r.body?.cancel();
      return r.status;
    }));
    assertEquals(statuses.filter((s) => s !== 200), []);
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 0);
    await drained;
    assert(!(await listening(port)), "no worker is left serving");
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("a worker stops by itself when the first process is killed", async () => {
  const data = await Deno.makeTempDir({ prefix: "zoo-workers-" });
  const port = freePort();
  try {
    const { child, drained } = await startTwo(data, port);
    child.kill("SIGKILL");
    await child.status;
    let open = true;
    for (let i = 0; i < 100 && open; i++) {
      await new Promise((r) => setTimeout(r, 100));
      open = await listening(port);
    }
    await drained;
    assert(!open, "the orphaned worker stopped within 10 s");
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
