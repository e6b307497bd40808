/**
 * Builds the pages' script: bundles `web/zoo.ts` with the SDK modules and
 * TensorFlow.js it imports (esbuild from npm, for browsers, minified, one ES
 * module), copies tfjs's WebAssembly binaries from the installed
 * `@tensorflow/tfjs-backend-wasm`, names every file by a hash of its content
 * and writes `web/dist/manifest.json`, which the registry reads
 * (`registry/routes/assets.ts`).
 *
 * The SDK's Deno-only parts (reading folders, the code cache on disk, PNG and
 * JPEG decoding through Node packages) are never called in the browser, where
 * images are decoded by the browser; their Node imports are replaced by a
 * module that throws if used, so the bundle holds no Node shims.
 *
 * `--check` builds into a temporary folder and fails when the checked-in
 * `web/dist` differs, so CI catches a bundle that is out of date.
 *
 * ```sh
 * deno task build:web           # rebuild web/dist
 * deno task build:web --check   # fail if web/dist is stale
 * ```
 *
 * @module
 */
import * as esbuild from "esbuild";

/** Where the built files go. */
export const DIST = new URL("./dist/", import.meta.url);
const ROOT = new URL("../", import.meta.url);
/**
 * tfjs's wasm binaries. The pages are not cross-origin isolated, so tfjs picks
 * the SIMD one or the plain one, but `setWasmPaths` wants a path for each.
 */
const WASM_FILES = [
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
];
/** Imports replaced by a throwing stub in the browser. */
const NODE_ONLY = /^(node:.*|pngjs|jpeg-js|cli-progress)$/;

async function contentHash(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return [...hash.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const nodeStub: esbuild.Plugin = {
  name: "node-only-stub",
  setup(build) {
    build.onResolve({ filter: NODE_ONLY }, (args) => ({ path: args.path, namespace: "node-only" }));
    build.onLoad({ filter: /.*/, namespace: "node-only" }, (args) => ({
      contents: `const fail = () => { throw new Error(${
        JSON.stringify(`"${args.path}" is not available in the browser`)
      }); };
const stub = new Proxy(fail, { get: (_t, key) => key === "__esModule" ? false : stub, apply: fail });
export default stub;
export const Buffer = stub, createHash = stub, homedir = stub, join = stub, isAbsolute = stub,
  relative = stub, dirname = stub, resolve = stub, request = stub, cpus = stub, availableParallelism = stub, totalmem = stub, freemem = stub, platform = stub, decode = stub, PNG = stub, env = stub, fileURLToPath = stub, pathToFileURL = stub, basename = stub, extname = stub, sep = "/", Readable = stub, pipeline = stub, Worker = stub, readFileSync = stub, existsSync = stub, SingleBar = stub, Presets = stub, createRequire = stub;`,
      loader: "js",
    }));
  },
};

/** The Deno import map entries the SDK uses, resolved for esbuild. */
const importMap: esbuild.Plugin = {
  name: "deno-import-map",
  setup(build) {
    build.onResolve({ filter: /^@std\// }, (args) => ({
      path: new URL(`_std/${args.path.slice(5)}.ts`, ROOT).pathname,
    }));
  },
};

/**
 * Builds the bundle and the wasm copies into `outDir`.
 *
 * @param outDir the folder to write (emptied first)
 * @returns the manifest: logical name → hashed file name
 */
export async function build(outDir: URL): Promise<Record<string, string>> {
  await Deno.remove(outDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [new URL("./zoo.ts", import.meta.url).pathname],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "eof",
    write: false,
    absWorkingDir: new URL(".", ROOT).pathname,
    plugins: [nodeStub, importMap],
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  await esbuild.stop();
  const manifest: Record<string, string> = {};
  const js = result.outputFiles[0];
  if (!js) throw new Error("Cannot build the pages' script: esbuild wrote nothing");
  const jsName = `zoo-${await contentHash(js.contents)}.js`;
  await Deno.writeFile(new URL(jsName, outDir), js.contents);
  manifest["zoo.js"] = jsName;
  const wasmDir = new URL("node_modules/@tensorflow/tfjs-backend-wasm/dist/", ROOT);
  for (const file of WASM_FILES) {
    const bytes = await Deno.readFile(new URL(file, wasmDir));
    const name = `${file.replace(/\.wasm$/, "")}-${await contentHash(bytes)}.wasm`;
    await Deno.writeFile(new URL(name, outDir), bytes);
    manifest[file] = name;
  }
  await Deno.writeTextFile(
    new URL("manifest.json", outDir),
    JSON.stringify(manifest, null, 2) + "\n",
  );
  return manifest;
}

/**
 * Compares two built folders file by file.
 *
 * @returns the names that differ or exist in one only
 */
export async function differences(a: URL, b: URL): Promise<string[]> {
  const names = async (dir: URL) => {
    const out: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) if (e.isFile) out.push(e.name);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return out;
  };
  const all = new Set([...await names(a), ...await names(b)]);
  const differ: string[] = [];
  for (const name of [...all].sort()) {
    const [x, y] = await Promise.all([
      Deno.readFile(new URL(name, a)).catch(() => null),
      Deno.readFile(new URL(name, b)).catch(() => null),
    ]);
    if (!x || !y || x.length !== y.length || x.some((v, i) => v !== y[i])) differ.push(name);
  }
  return differ;
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const tmp = await Deno.makeTempDir({ prefix: "zoo-web-" });
    try {
      const out = new URL(`file://${tmp}/`);
      await build(out);
      const differ = await differences(out, DIST);
      if (differ.length > 0) {
        console.error(
          `web/dist is out of date (${
            differ.join(", ")
          }): run "deno task build:web" and commit web/dist`,
        );
        Deno.exit(1);
      }
      console.log("web/dist matches a fresh build");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  } else {
    const manifest = await build(DIST);
    for (const [name, file] of Object.entries(manifest)) {
      const { size } = await Deno.stat(new URL(file, DIST));
      console.log(`${name} -> web/dist/${file} (${(size / 1024).toFixed(0)} KiB)`);
    }
  }
}
