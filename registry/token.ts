/**
 * Mints API tokens: `deno task token create --scope publish:zoo`. The secret
 * is printed once; only its hash is stored.
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createToken } from "./auth.ts";
import { openStore, STORE_FLAGS, STORE_FLAGS_HELP, storeConfig } from "./storage/open.ts";

const HELP = `Mint a registry token.

Usage: deno task token create --scope SCOPE [--scope SCOPE ...] [flags]

Flags (flag, then environment, then default):
  --scope S    read | publish:<namespace> | admin (repeatable)   required
  --label L    who or what the token is for                      ""
  -h, --help   this text

The registry's store, read as the registry reads it:
${STORE_FLAGS_HELP}`;

if (import.meta.main) {
  try {
    const flags = parseArgs(Deno.args, {
      string: ["scope", "label", ...STORE_FLAGS],
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
    const store = await openStore(storeConfig(flags));
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
