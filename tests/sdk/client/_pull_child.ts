/**
 * A separate process pulling one reference into a shared cache:
 * `_pull_child.ts URL CACHE REF [--progress]`; `--progress` forces the download bar on.
 */
import { ZooClient } from "../../../sdk/client/mod.ts";

const [url, cacheDir, reference, flag] = Deno.args;
const pulled = await new ZooClient({
  url: url!,
  cacheDir: cacheDir!,
  ...(flag === "--progress" ? { progress: true } : {}),
}).pull(reference!);
console.log(pulled.reference);
