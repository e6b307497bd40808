/**
 * The layout of the wasm kernels as their docs describe it: the table in
 * `register.ts`'s module doc lists, family by family, exactly the kernels
 * each family module defines and of which kind (a replacement of a kernel
 * tfjs-backend-wasm ships, or an addition); every family module's own doc
 * names its kernels; and the two exported lists hold exactly those kernels.
 */
import { assert, assertEquals } from "@std/assert";
import {
  ADDED_KERNELS,
  KERNEL_FAMILIES,
  REPLACED_KERNELS,
} from "../../../sdk/devices/wasm/register.ts";

const dir = new URL("../../../sdk/devices/wasm/", import.meta.url);
const source = await Deno.readTextFile(new URL("register.ts", dir));

/** The module doc's table: family file → [replaced, added] kernel names. */
function docTable(): Map<string, [string[], string[]]> {
  const rows = new Map<string, [string[], string[]]>();
  for (const line of source.split("\n")) {
    const m = line.match(/^ \* \| `([a-z_]+\.ts)` \|(.*)\|(.*)\|$/);
    if (m === null) continue;
    const names = (cell: string) => [...cell.matchAll(/`([A-Za-z0-9]+)`/g)].map((n) => n[1]!);
    rows.set(m[1]!, [names(m[2]!).sort(), names(m[3]!).sort()]);
  }
  return rows;
}

Deno.test("register.ts's doc table lists each family's replaced and added kernels as the code defines them", () => {
  const table = docTable();
  assertEquals([...table.keys()].sort(), Object.keys(KERNEL_FAMILIES).sort());
  for (const [family, kernels] of Object.entries(KERNEL_FAMILIES)) {
    const of = (kind: string) => kernels.filter((k) => k.kind === kind).map((k) => k.name).sort();
    assertEquals(table.get(family), [of("replaced"), of("added")], `the row of ${family}`);
  }
});

Deno.test("REPLACED_KERNELS and ADDED_KERNELS hold every family's kernels once, and nothing else", () => {
  const all = Object.values(KERNEL_FAMILIES).flat();
  const of = (kind: string) => all.filter((k) => k.kind === kind).map((k) => k.name).sort();
  assertEquals([...REPLACED_KERNELS].sort(), of("replaced"));
  assertEquals([...ADDED_KERNELS].sort(), of("added"));
  assertEquals(new Set(all.map((k) => k.name)).size, all.length);
});

Deno.test("every family module's doc names the kernels it defines", async () => {
  for (const [family, kernels] of Object.entries(KERNEL_FAMILIES)) {
    const text = await Deno.readTextFile(new URL(`kernels/${family}`, dir));
    const doc = text.slice(0, text.indexOf("@module"));
    for (const { name } of kernels) {
      assert(doc.includes(`\`${name}\``), `${family}'s module doc does not name ${name}`);
    }
  }
});
