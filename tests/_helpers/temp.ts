/**
 * Temporary folders that remove themselves: `await using dir = await tempDir(…)`
 * takes the place of a `try`/`finally` around `Deno.remove`, and
 * {@linkcode tempTree} writes the files a test starts from.
 *
 * @module
 */
import { dirname, join } from "node:path";

/** A temporary folder, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  /** Its absolute path. */
  path: string;
}

/**
 * Makes a temporary folder that `await using` removes at the end of the scope.
 *
 * @param prefix the start of the folder's name, to tell whose it is
 * @returns the folder
 */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true });
    },
  };
}

/**
 * Makes a temporary folder holding `files`, each path relative to it, its
 * parent folders made as needed.
 *
 * @param prefix the start of the folder's name
 * @param files relative path → text or bytes
 * @returns the folder, removed when disposed
 */
export async function tempTree(
  prefix: string,
  files: Record<string, string | Uint8Array>,
): Promise<TempDir> {
  const dir = await tempDir(prefix);
  for (const [path, content] of Object.entries(files)) {
    await Deno.mkdir(join(dir.path, dirname(path)), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(join(dir.path, path), content);
    else await Deno.writeFile(join(dir.path, path), content);
  }
  return dir;
}
