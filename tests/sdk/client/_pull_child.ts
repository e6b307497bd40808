/** A separate process pulling one reference into a shared cache: `_pull_child.ts URL CACHE REF`. */
import { ZooClient } from "../../../sdk/client.ts";

const [url, cacheDir, reference] = Deno.args;
const pulled = await new ZooClient({ url: url!, cacheDir: cacheDir!, progress: false }).pull(
  reference!,
);
console.log(pulled.reference);
