/**
 * Mints API tokens: `deno task token create --scope publish:zoo`. The secret
 * is printed once; only its hash is stored.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createToken } from "./auth.ts";
import { openSqliteFsStore } from "./storage/sqlite_fs.ts";

const HELP = `Mint a registry token.

Usage: deno task token create --scope SCOPE [--scope SCOPE ...] [flags]

Flags (flag, then environment, then default):
  --scope S    read | publish:<namespace> | admin (repeatable)   required
  --label L    who or what the token is for                      ""
  --data DIR   the registry's data dir              ZOO_DATA     ./.zoo-data
  -h, --help   this text`;

if (import.meta.main) {
  try {
    const flags = parseArgs(Deno.args, {
      string: ["scope", "label", "data"],
      boolean: ["help"],
      collect: ["scope"],
      alias: { h: "help" },
    });
    if (flags.help) {
      console.log(HELP);
      Deno.exit(0);
    }
    if (flags._[0] !== "create") {
      throw new TypeError('Unknown command: use "token create --scope <scope>"');
    }
    const store = await openSqliteFsStore(
      (flags.data as string | undefined) ?? Deno.env.get("ZOO_DATA") ?? "./.zoo-data",
    );
    const { token, record } = await createToken(
      store,
      (flags.scope as string[] | undefined) ?? [],
      (flags.label as string | undefined) ?? "",
    );
    await store.close();
    console.error(`Token ${record.id} with scopes ${record.scopes.join(", ")} (shown once):`);
    console.log(token);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}
