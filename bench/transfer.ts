/**
 * Checkpoint transfer on loopback: the SDK's cold pull, warm load and publish
 * of a Dense checkpoint cut in 32 MiB shards, side by side with curl against
 * the same registry and with curl against nginx serving the same files, in
 * paired rounds of one run (each SDK measure seconds apart from its curl
 * counterpart, the order alternating between rounds; medians reported).
 *
 * - cold pull: `ZooClient.pull` into an empty cache, in a child process that
 *   reports its wall time, CPU time and peak RSS (`VmHWM`); against `curl
 *   --parallel --parallel-max 4` writing the same shards to files, from the
 *   registry and from nginx.
 * - warm load: `ZooClient.readFiles` (every shard read and verified, on this
 *   thread and on two worker threads) and `loadModel` from the warm cache,
 *   against reading the same files into one buffer with no hashing.
 * - publish: `ZooClient.publish` of the folder to an empty registry, against
 *   curl uploading the same shards (4 at once) to another empty registry; and
 *   a second publish of the same folder, where every blob is skipped.
 * - where the time goes (first size only): the pull's stages measured one at a
 *   time in this process: requests alone, then hashing, writing and the
 *   fsync added, and the previous pipeline (one blob at a time, a write per
 *   network chunk, then a second read to hash); a cold pull and a warm load
 *   under `--cpu-prof` (the functions their time falls in); SHA-256 by
 *   node:crypto, WebCrypto, node:crypto on two Workers and OpenSSL.
 *
 * Writes `bench/results/transfer.md`; a hand-written part after the
 * `<!-- findings -->` line of that file is kept.
 *
 * Usage: `deno task bench:transfer [--sizes 256,1024] [--rounds 3] [--against main] [--no-write]`
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import * as tf from "@tensorflow/tfjs";
import { createHash } from "node:crypto";
import process from "node:process";
import { join } from "node:path";
import { hashFile, ZooClient } from "../sdk/client/mod.ts";
import { freePort, waitForPort } from "./_net.ts";
import { lscpu, median, writeReport } from "./_report.ts";

const HELP = `Usage: deno task bench:transfer [flags]

Measures the SDK's cold pull, warm load and publish of Dense checkpoints in
32 MiB shards against curl (registry and nginx) on loopback, and writes
bench/results/transfer.md.

Flags:
  --sizes <list>   checkpoint sizes in MiB, multiples of 32  (default 256,1024)
  --rounds <n>     paired rounds; medians are reported       (default 3)
  --against <ref>  also run the SDK of a git revision against this one, in
                   separate processes (first size, at least 5 rounds)
  --no-write       print the tables, leave the results file alone
  -h, --help       this text

Needs curl; uses nginx (installed with apt-get when missing and root) for the
static-server rows, and skips them without it.`;

/** Shard size of the bench checkpoints. */
const SHARD = 32 << 20;
/** Parallel transfers of curl, as many as the SDK's. */
const CURL_PARALLEL = 4;
/** Targets of the issue, in GB/s. */
const TARGETS = { pull: 1, verify: 1.5, publish: 1 };
const MODEL = "bench/dense";
const decoder = new TextDecoder();

function log(message: string): void {
  console.error(`[bench:transfer] ${message}`);
}

/** GB/s, 1 GB = 10^9 bytes. */
function gbps(bytes: number, ms: number): number {
  return bytes / (ms / 1000) / 1e9;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return { ok: o.success, out: decoder.decode(o.stdout) + decoder.decode(o.stderr) };
  } catch {
    return { ok: false, out: "" };
  }
}

/** Finds nginx, installing Debian's package when missing and running as root. */
async function ensureNginx(): Promise<boolean> {
  if ((await run("sh", ["-c", "command -v nginx"])).ok) return true;
  if (Deno.uid() !== 0) return false;
  log("nginx is missing: apt-get install -y nginx");
  await run("apt-get", ["install", "-y", "nginx"]);
  return (await run("sh", ["-c", "command -v nginx"])).ok;
}

/** CPU seconds a process has used so far (user + system), from /proc. */
async function cpuOf(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

/** Writes a Dense checkpoint of `mib` MiB (no bias) in 32 MiB shards. */
async function makeCheckpoint(dir: string, mib: number): Promise<void> {
  const inputs = mib === 1024 ? 8192 : 4096;
  const units = (mib << 20) / 4 / inputs;
  const count = (mib << 20) / SHARD;
  const paths = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  const layer = {
    class_name: "Dense",
    config: {
      name: "dense",
      units,
      use_bias: false,
      activation: "linear",
      batch_input_shape: [null, inputs],
      dtype: "float32",
      trainable: true,
      kernel_initializer: { class_name: "Zeros", config: {} },
      bias_initializer: { class_name: "Zeros", config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  };
  await Deno.writeTextFile(
    join(dir, "model.json"),
    JSON.stringify({
      format: "layers-model",
      generatedBy: "bench/transfer.ts",
      convertedBy: null,
      modelTopology: {
        class_name: "Sequential",
        config: { name: "dense", layers: [layer] },
        keras_version: "tfjs-layers 4.22.0",
        backend: "tensor_flow.js",
      },
      weightsManifest: [{
        paths,
        weights: [{ name: "dense/kernel", shape: [inputs, units], dtype: "float32" }],
      }],
    }),
  );
  const values = new Float32Array(SHARD / 4);
  for (const [i, p] of paths.entries()) {
    for (let j = 0; j < values.length; j++) values[j] = ((j * 7 + i * 13) % 1999) / 1999 - 0.5;
    await Deno.writeFile(join(dir, p), new Uint8Array(values.buffer));
  }
  await Deno.writeTextFile(join(dir, "card.json"), JSON.stringify({ task: "bench" }));
}

/** A registry in its own process over a fresh data dir, with a publish token. */
interface Registry {
  url: string;
  token: string;
  pid: number;
  stop(): Promise<void>;
}

async function startRegistry(root: string): Promise<Registry> {
  const data = await Deno.makeTempDir({ dir: root, prefix: "registry-" });
  const made = await run(Deno.execPath(), [
    "run",
    "-A",
    "registry/token.ts",
    "create",
    "--scope",
    "publish:bench",
    "--data",
    data,
  ]);
  const token = /zoo_[A-Za-z0-9_]+/.exec(made.out)?.[0];
  if (!token) throw new Error(`Cannot mint a token: ${made.out}`);
  const port = freePort();
  const server = await spawnServer(
    Deno.execPath(),
    ["run", "-A", "registry/main.ts", "--no-seed", "--data", data, "--port", String(port)],
    port,
    data,
  );
  return { ...server, token };
}

/**
 * Starts `cmd` quietly, waits until it listens on `port`, and gives a stop
 * that ends it and removes `dir`, the folder it was given to work in.
 */
async function spawnServer(
  cmd: string,
  args: string[],
  port: number,
  dir: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
  await waitForPort(port, 30_000);
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** nginx serving `dir` on a free port, or null without nginx. */
async function startNginx(
  root: string,
  dir: string,
): Promise<{ url: string; stop(): Promise<void> } | null> {
  if (!(await ensureNginx())) return null;
  const conf = await Deno.makeTempDir({ dir: root, prefix: "nginx-" });
  const port = freePort();
  await Deno.writeTextFile(
    join(conf, "nginx.conf"),
    `daemon off; master_process off; worker_processes 1; pid ${conf}/nginx.pid;
error_log ${conf}/error.log;
events { worker_connections 64; }
http {
  access_log off; sendfile on; tcp_nopush on;
  client_body_temp_path ${conf}/body; proxy_temp_path ${conf}/proxy;
  fastcgi_temp_path ${conf}/fastcgi; uwsgi_temp_path ${conf}/uwsgi; scgi_temp_path ${conf}/scgi;
  server { listen 127.0.0.1:${port}; root ${dir}; }
}
`,
  );
  return await spawnServer("nginx", ["-c", join(conf, "nginx.conf"), "-p", conf], port, conf);
}

/** One timed transfer: wall ms, client CPU s, and peak RSS in MiB where known. */
interface Timed {
  ms: number;
  cpu: number;
  rssMiB?: number;
}

/** What a child process does: pull, load (offline, from a warm cache) or publish a folder. */
type ChildOp = "pull" | "load" | "publish";

/**
 * Runs one SDK operation in a child process (`--child`), which reports its
 * own wall time, CPU time and peak RSS; `sdk` is the folder of the SDK to
 * use (another revision's, for `--against`).
 */
async function child(
  op: ChildOp,
  args: { url: string; cacheDir: string; reference: string; token?: string; dir?: string },
  sdk = new URL("../sdk/", import.meta.url).pathname,
  denoFlags: string[] = [],
): Promise<Timed> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...denoFlags,
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      import.meta.filename!,
      "--child",
      op,
      sdk,
      JSON.stringify(args),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!o.success) throw new Error(`The child's ${op} failed: ${decoder.decode(o.stderr)}`);
  return JSON.parse(decoder.decode(o.stdout).trim().split("\n").at(-1)!) as Timed;
}

/** The `--child` side of {@linkcode child}. */
async function runChild(op: string, sdk: string, json: string): Promise<void> {
  const a = JSON.parse(json) as {
    url: string;
    cacheDir: string;
    reference: string;
    token?: string;
    dir?: string;
  };
  // The client lives in sdk/client/ now, in sdk/client.ts in older revisions.
  const entry = await Deno.stat(join(sdk, "client", "mod.ts")).then(
    () => "client/mod.ts",
    () => "client.ts",
  );
  const { ZooClient: Client } = await import(new URL(entry, `file://${sdk}`).href) as {
    ZooClient: typeof ZooClient;
  };
  const zoo = new Client({
    url: a.url,
    cacheDir: a.cacheDir,
    progress: false,
    offline: op === "load",
    ...(a.token ? { token: a.token } : {}),
  });
  let t: Timed;
  if (op === "pull") t = await timed(() => zoo.pull(a.reference));
  else if (op === "load") {
    await tf.setBackend("cpu");
    t = await timed(async () => (await zoo.loadModel(a.reference)).dispose());
  } else {
    const [name, version] = a.reference.split("@") as [string, string];
    t = await timed(() => zoo.publish(a.dir!, { name, version }));
  }
  const status = await Deno.readTextFile("/proc/self/status");
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  console.log(JSON.stringify({ ...t, rssMiB: hwm }));
}

/**
 * The previous SDK (`git archive <ref>`) against this one, each in its
 * own processes, alternating: publish to an empty registry, cold pull from
 * it, warm load from that cache.
 */
async function against(
  root: string,
  ref: string,
  mib: number,
  rounds: number,
): Promise<{ ref: string; mib: number; rows: Record<string, Record<string, Timed[]>> }> {
  const base = await Deno.makeTempDir({ dir: root, prefix: "baseline-" });
  const archive = await run("sh", [
    "-c",
    // The SDK imports core/ and zoo/ beside it: take the whole revision.
    `git archive ${JSON.stringify(ref)} | tar -x -C ${JSON.stringify(base)}`,
  ]);
  if (!archive.ok) throw new Error(`Cannot check out "${ref}": ${archive.out}`);
  const dir = await Deno.makeTempDir({ dir: root, prefix: `ckpt-against-` });
  await makeCheckpoint(dir, mib);
  const sides = {
    [ref]: join(base, "sdk") + "/",
    this: new URL("../sdk/", import.meta.url).pathname,
  };
  const rows: Record<string, Record<string, Timed[]>> = {};
  for (let r = 0; r < rounds; r++) {
    log(`against ${ref}: round ${r + 1} of ${rounds}`);
    const names = Object.keys(sides);
    for (const side of r % 2 ? names.reverse() : names) {
      const reg = await startRegistry(root);
      const cacheDir = join(root, `against-cache-${r}`);
      const add = (key: string, t: Timed) => ((rows[key] ??= {})[side] ??= []).push(t);
      try {
        const reference = `${MODEL}@1.0.0`;
        const common = { url: reg.url, reference, token: reg.token };
        add(
          "publish to an empty registry",
          await child(
            "publish",
            { ...common, cacheDir: join(root, "against-publish"), dir },
            sides[side],
          ),
        );
        add("cold pull", await child("pull", { ...common, cacheDir }, sides[side]));
        add("warm loadModel", await child("load", { ...common, cacheDir }, sides[side]));
      } finally {
        await reg.stop();
        await Deno.remove(cacheDir, { recursive: true }).catch(() => {});
      }
    }
  }
  return { ref, mib, rows };
}

/** curl with `times` after it, so its CPU time is known. */
async function curl(args: string[]): Promise<Timed> {
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const t0 = performance.now();
  const o = await new Deno.Command("bash", {
    args: ["-c", `curl -sSf --no-progress-meter ${quoted} || exit 1; times`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  if (!o.success) throw new Error(`curl failed: ${decoder.decode(o.stderr)}`);
  // `times` prints the shell's, then its children's "XmY.YYYs XmY.YYYs".
  const child = decoder.decode(o.stdout).trim().split("\n").at(-1)!;
  const secs = [...child.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { ms, cpu: secs.reduce((a, b) => a + b, 0) };
}

function curlDownloads(base: string, names: string[], out: string): string[] {
  return [
    "--parallel",
    "--parallel-max",
    String(CURL_PARALLEL),
    ...names.flatMap((n, i) => ["-o", join(out, `${i}.bin`), `${base}${n}`]),
  ];
}

function curlUploads(url: string, token: string, files: { path: string; digest: string }[]) {
  return [
    "--parallel",
    "--parallel-max",
    String(CURL_PARALLEL),
    "-H",
    `authorization: Bearer ${token}`,
    "-H",
    "content-type: application/octet-stream",
    ...files.flatMap((f) => [
      "-X",
      "POST",
      "-T",
      f.path,
      "-o",
      "/dev/null",
      `${url}/api/blobs?digest=${f.digest}`,
    ]),
  ];
}

/** Times `fn` with this process's CPU time. */
async function timed(fn: () => Promise<unknown>): Promise<Timed> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1e6 };
}

/** The pull's stages, one at a time, against one registry: requests, hashing, writes, fsync. */
async function stages(
  reg: Registry,
  digests: string[],
  root: string,
): Promise<ProfileRow[]> {
  const rows: ProfileRow[] = [];
  const fetchAll = async (
    parallel: number,
    onChunk: (i: number, chunk: Uint8Array) => Promise<void> | void,
    onEnd: (i: number) => Promise<void>,
  ) => {
    let next = 0;
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (next < digests.length) {
        const i = next++;
        const res = await fetch(`${reg.url}/api/blobs/${digests[i]}`);
        for await (const chunk of res.body!) await onChunk(i, chunk);
        await onEnd(i);
      }
    }));
  };
  const none = () => Promise.resolve();
  rows.push({
    label: "requests alone (4 at once, bodies discarded)",
    t: await timed(() => fetchAll(4, () => {}, none)),
  });
  const hashes = digests.map(() => createHash("sha256"));
  rows.push({
    label: "+ hashing each network chunk (16-64 KiB) as it arrives",
    t: await timed(() => fetchAll(4, (i, c) => void hashes[i]!.update(c), none)),
  });
  const steps = [
    { write: false, sync: false, label: "+ hashing gathered 1 MiB chunks instead" },
    { write: true, sync: false, label: "+ writing the 1 MiB chunks" },
    {
      write: true,
      sync: true,
      label: "+ one fsync per file (the previous SDK's pipeline, less its bookkeeping)",
    },
  ];
  for (const { write: writes, sync, label } of steps) {
    const dir = await Deno.makeTempDir({ dir: root });
    const files = new Map<number, Deno.FsFile>();
    const bufs = new Map<number, { buf: Uint8Array; fill: number }>();
    const h = digests.map(() => createHash("sha256"));
    const write = async (f: Deno.FsFile | undefined, data: Uint8Array) => {
      for (let n = 0; f && n < data.byteLength;) n += await f.write(data.subarray(n));
    };
    rows.push({
      label,
      t: await timed(() =>
        fetchAll(4, async (i, c) => {
          if (!bufs.has(i)) {
            if (writes) {
              files.set(i, await Deno.open(join(dir, `${i}`), { write: true, create: true }));
            }
            bufs.set(i, { buf: new Uint8Array(1 << 20), fill: 0 });
          }
          const b = bufs.get(i)!;
          for (let used = 0; used < c.byteLength;) {
            const n = Math.min(c.byteLength - used, b.buf.byteLength - b.fill);
            b.buf.set(c.subarray(used, used + n), b.fill);
            b.fill += n;
            used += n;
            if (b.fill === b.buf.byteLength) {
              h[i]!.update(b.buf);
              await write(files.get(i), b.buf);
              b.fill = 0;
            }
          }
        }, async (i) => {
          const f = files.get(i);
          const b = bufs.get(i)!;
          h[i]!.update(b.buf.subarray(0, b.fill));
          await write(f, b.buf.subarray(0, b.fill));
          if (sync) await f?.syncData();
          f?.close();
        })
      ),
    });
    await Deno.remove(dir, { recursive: true });
  }
  const byobDir = await Deno.makeTempDir({ dir: root });
  rows.push({
    label:
      "BYOB reads into two 1 MiB buffers, each read hashed and written as it arrives, one fsync (the SDK's pipeline)",
    t: await timed(async () => {
      let next = 0;
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (next < digests.length) {
          const i = next++;
          const res = await fetch(`${reg.url}/api/blobs/${digests[i]}`);
          using f = await Deno.open(join(byobDir, `${i}`), { write: true, create: true });
          const reader = res.body!.getReader({ mode: "byob" });
          const h = createHash("sha256");
          const bufs = [new ArrayBuffer(1 << 20), new ArrayBuffer(1 << 20)];
          let writing: Promise<void> = Promise.resolve();
          for (let turn = 0;; turn ^= 1) {
            const { done, value } = await reader.read(new Uint8Array(bufs[turn]!));
            if (value) bufs[turn] = value.buffer;
            if (done) break;
            h.update(value);
            await writing;
            writing = (async () => {
              for (let n = 0; n < value.byteLength;) n += await f.write(value.subarray(n));
            })();
          }
          await writing;
          await f.syncData();
          if (`sha256:${h.digest("hex")}` !== digests[i]) throw new Error("BYOB stage: bad digest");
        }
      }));
    }),
  });
  await Deno.remove(byobDir, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: root });
  rows.push({
    label: "previous pipeline: one blob at a time, a write per network chunk, then re-read to hash",
    t: await timed(async () => {
      const files = new Map<number, Deno.FsFile>();
      await fetchAll(1, async (i, c) => {
        if (!files.has(i)) {
          files.set(i, await Deno.open(join(dir, `${i}`), { write: true, create: true }));
        }
        const f = files.get(i)!;
        for (let n = 0; n < c.byteLength;) n += await f.write(c.subarray(n));
      }, async (i) => {
        files.get(i)!.close();
        await hashFile(join(dir, `${i}`));
      });
    }),
  });
  await Deno.remove(dir, { recursive: true });
  return rows;
}

/** A row of the "where the time goes" tables; `section` starts a new table. */
interface ProfileRow {
  label: string;
  t: Timed;
  section?: string;
  /** What the CPU profile attributes to it, in its own words. */
  note?: string;
}

/** Self time of a `.cpuprofile`, summed by function and script, largest first. */
async function profileSummary(dir: string): Promise<{ total: number; top: [string, number][] }> {
  const name = [...Deno.readDirSync(dir)].find((e) => e.name.endsWith(".cpuprofile"))!.name;
  const prof = JSON.parse(await Deno.readTextFile(join(dir, name))) as {
    nodes: { id: number; callFrame: { functionName: string; url: string } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const f = byId.get(id)!;
    const script = f.url.replace(/^.*\/(node_modules|ext:|sdk)\/?/, "$1/").split("/").slice(-2)
      .join("/");
    const key = f.url === "" ? f.functionName : `${f.functionName || "(anonymous)"} ${script}`;
    const dt = (prof.timeDeltas[i] ?? 0) / 1000;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return { total, top: [...self].sort((x, y) => y[1] - x[1]).slice(0, 8) };
}

/**
 * A cold pull and a warm load in child processes under `--cpu-prof`: the
 * functions the samples fall in (self time; a native op's time falls in the
 * JavaScript function that called it).
 */
async function profiles(reg: Registry, root: string): Promise<ProfileRow[]> {
  const rows: ProfileRow[] = [];
  const cache = await Deno.makeTempDir({ dir: root, prefix: "prof-cache-" });
  for (const op of ["pull", "load"] as const) {
    const dir = await Deno.makeTempDir({ dir: root, prefix: "prof-" });
    const t = await child(
      op,
      { url: reg.url, cacheDir: cache, reference: `${MODEL}@1.0.0` },
      undefined,
      ["--cpu-prof", `--cpu-prof-dir=${dir}`],
    );
    const { total, top } = await profileSummary(dir);
    rows.push({
      ...(op === "pull" ? { section: "A cold pull and a warm load under --cpu-prof" } : {}),
      label: op === "pull"
        ? "cold pull, whole child process"
        : "warm loadModel, whole child process",
      t,
      note: `${fmt(total, 0)} ms sampled: ` +
        top.map(([k, ms]) => `${k.replaceAll("|", "/")} ${fmt(ms, 0)}`).join("; "),
    });
    await Deno.remove(dir, { recursive: true });
  }
  await Deno.remove(cache, { recursive: true });
  return rows;
}

/**
 * SHA-256 of the shard files (read into memory first) by the implementations
 * at hand: `node:crypto` streaming (what the SDK uses), WebCrypto one call
 * per shard (one at a time, and all at once), `node:crypto` in two Workers
 * (one shard each at a time, buffers transferred; their start-up timed
 * apart), and OpenSSL's command line on the files.
 */
async function hashRows(paths: string[]): Promise<ProfileRow[]> {
  const section = "SHA-256 implementations on the same shards (in memory; CPU of this process)";
  const load = () => Promise.all(paths.map((p) => Deno.readFile(p)));
  let bufs = await load();
  const rows: ProfileRow[] = [];
  rows.push({
    section,
    label: "node:crypto createHash, 1 MiB updates (the SDK's)",
    t: await timed(() => {
      for (const b of bufs) {
        const h = createHash("sha256");
        for (let o = 0; o < b.byteLength; o += 1 << 20) h.update(b.subarray(o, o + (1 << 20)));
        h.digest("hex");
      }
      return Promise.resolve();
    }),
  });
  rows.push({
    label: "WebCrypto subtle.digest, one shard at a time",
    t: await timed(async () => {
      for (const b of bufs) await crypto.subtle.digest("SHA-256", b);
    }),
  });
  rows.push({
    label: "WebCrypto subtle.digest, every shard at once",
    t: await timed(() => Promise.all(bufs.map((b) => crypto.subtle.digest("SHA-256", b)))),
  });
  const source = `import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const d = createHash("sha256").update(new Uint8Array(e.data)).digest("hex");
  self.postMessage(d);
};`;
  const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
  let workers: Worker[] = [];
  const ask = (w: Worker, buf: ArrayBuffer) =>
    new Promise<void>((resolve) => {
      w.onmessage = () => resolve();
      w.postMessage(buf, [buf]);
    });
  const start = await timed(async () => {
    workers = [0, 1].map(() => new Worker(url, { type: "module" }));
    await Promise.all(workers.map((w) => ask(w, new ArrayBuffer(8))));
  });
  try {
    const shards = bufs.map((b) => b.buffer as ArrayBuffer);
    bufs = [];
    let next = 0;
    rows.push({
      label: "node:crypto in 2 Workers, one shard each at a time (buffers transferred)",
      t: await timed(() =>
        Promise.all(workers.map(async (w) => {
          while (next < shards.length) await ask(w, shards[next++]!);
        }))
      ),
      note: `starting the two Workers took ${fmt(start.ms, 0)} ms more`,
    });
  } finally {
    for (const w of workers) w.terminate();
    URL.revokeObjectURL(url);
  }
  const quoted = paths.map((p) => `'${p}'`).join(" ");
  const t0 = performance.now();
  const o = await new Deno.Command("bash", {
    args: ["-c", `openssl dgst -sha256 ${quoted} >/dev/null || exit 1; times`],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (o.success) {
    const ms = performance.now() - t0;
    const last = decoder.decode(o.stdout).trim().split("\n").at(-1)!;
    const secs = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) =>
      Number(m[1]) * 60 + Number(m[2])
    );
    rows.push({
      label: "openssl dgst -sha256 on the files (its own process, page cache)",
      t: { ms, cpu: secs.reduce((a, b) => a + b, 0) },
    });
  }
  return rows;
}

/** Figures of one checkpoint size, per round. */
interface SizeResult {
  mib: number;
  bytes: number;
  rounds: Record<string, Timed[]>;
}

async function measureSize(
  root: string,
  mib: number,
  rounds: number,
  profile: boolean,
): Promise<{ result: SizeResult; profileRows: ProfileRow[] }> {
  const dir = await Deno.makeTempDir({ dir: root, prefix: `ckpt-${mib}-` });
  log(`writing a ${mib} MiB checkpoint`);
  await makeCheckpoint(dir, mib);
  const count = (mib << 20) / SHARD;
  const names = Array.from({ length: count }, (_, i) => `group1-shard${i + 1}of${count}.bin`);
  const shardFiles = await Promise.all(names.map(async (n) => ({
    path: join(dir, n),
    digest: await hashFile(join(dir, n)),
  })));
  const bytes = count * SHARD;
  const nginx = await startNginx(root, dir);
  const out: Record<string, Timed[]> = {};
  const add = (key: string, t: Timed) => (out[key] ??= []).push(t);
  let profileRows: ProfileRow[] = [];
  for (let r = 0; r < rounds; r++) {
    log(`${mib} MiB, round ${r + 1} of ${rounds}`);
    const [a, b] = [await startRegistry(root), await startRegistry(root)];
    try {
      // Publish: the SDK to one empty registry, curl to the other; order alternates.
      const sdkPublish = async () => {
        const cpu0 = await cpuOf(a.pid);
        const zoo = new ZooClient({
          url: a.url,
          token: a.token,
          cacheDir: join(root, "publish-cache"),
          progress: false,
        });
        const t = await timed(() => zoo.publish(dir, { name: MODEL, version: "1.0.0" }));
        add("publish: server CPU", { ms: 0, cpu: (await cpuOf(a.pid)) - cpu0 });
        add("publish: SDK", t);
        add(
          "publish again: SDK (every blob skipped)",
          await timed(() => zoo.publish(dir, { name: MODEL, version: "1.0.1" })),
        );
      };
      const curlPublish = async () => {
        const cpu0 = await cpuOf(b.pid);
        add("publish: curl", await curl(curlUploads(b.url, b.token, shardFiles)));
        add("publish: curl server CPU", { ms: 0, cpu: (await cpuOf(b.pid)) - cpu0 });
      };
      for (const f of r % 2 ? [curlPublish, sdkPublish] : [sdkPublish, curlPublish]) await f();

      // Cold pull: the SDK, curl from the registry and curl from nginx; order alternates.
      const cache = join(root, `cache-${mib}-${r}`);
      const sdk = async () => {
        const cpu0 = await cpuOf(a.pid);
        add(
          "pull: SDK",
          await child("pull", { url: a.url, cacheDir: cache, reference: `${MODEL}@1.0.0` }),
        );
        add("pull: SDK server CPU", { ms: 0, cpu: (await cpuOf(a.pid)) - cpu0 });
      };
      const curlReg = async () => {
        const to = await Deno.makeTempDir({ dir: root });
        const cpu0 = await cpuOf(a.pid);
        const base = `${a.url}/api/blobs/`;
        add(
          "pull: curl ← registry",
          await curl(curlDownloads(base, shardFiles.map((f) => f.digest), to)),
        );
        add("pull: curl server CPU", { ms: 0, cpu: (await cpuOf(a.pid)) - cpu0 });
        await Deno.remove(to, { recursive: true });
      };
      const curlNginx = async () => {
        if (!nginx) return;
        const to = await Deno.makeTempDir({ dir: root });
        add("pull: curl ← nginx", await curl(curlDownloads(`${nginx.url}/`, names, to)));
        await Deno.remove(to, { recursive: true });
      };
      // What the disk takes to hold the same bytes durably: a pull syncs
      // every file it keeps (curl syncs nothing).
      const shardBytes = new Uint8Array(SHARD).fill(7);
      const diskSync = async () => {
        const to = await Deno.makeTempDir({ dir: root });
        add(
          "diag: the same bytes written to new files, each synced (4 at once)",
          await timed(async () => {
            let next = 0;
            const files = bytes / SHARD;
            const writer = async () => {
              for (let i = next++; i < files; i = next++) {
                using f = await Deno.open(join(to, `shard${i}`), { write: true, createNew: true });
                for (let off = 0; off < SHARD;) off += await f.write(shardBytes.subarray(off));
                await f.syncData();
              }
            };
            await Promise.all([writer(), writer(), writer(), writer()]);
          }),
        );
        await Deno.remove(to, { recursive: true });
      };
      const order = [sdk, curlReg, curlNginx, diskSync];
      for (const f of r % 2 ? order.reverse() : order) await f();

      // Warm load: reading the files alone, verified reads, and loadModel.
      const zoo = new ZooClient({ url: a.url, cacheDir: cache, offline: true, progress: false });
      const doc = await zoo.resolve(`${MODEL}@1.0.0`);
      const blobs = names.map((n) =>
        zoo.cache.blobPath(doc.files.find((f) => f.path === n)!.digest)
      );
      const readInto = async (buf: Uint8Array) => {
        let off = 0;
        for (const p of blobs) {
          using f = await Deno.open(p);
          for (;;) {
            const n = await f.read(buf.subarray(off, Math.min(off + (4 << 20), bytes)));
            if (n === null || n === 0) break;
            off += n;
          }
        }
      };
      const readAlone = async () => {
        add(
          "warm: read the files alone into one buffer",
          await timed(() => readInto(new Uint8Array(bytes))),
        );
        // What the fresh buffer's pages cost: every first write to a page
        // of new memory faults; a buffer written before does not.
        add(
          "diag: a new buffer of that size, written once (page faults alone)",
          await timed(() => Promise.resolve(new Uint8Array(bytes).fill(1))),
        );
        const touched = new Uint8Array(bytes).fill(1);
        add(
          "diag: the files read into a buffer written before (no new pages)",
          await timed(() => readInto(touched)),
        );
      };
      const verified = async () => {
        add("warm: SDK readFiles (read + verify)", await timed(() => zoo.readFiles(doc, names)));
      };
      // The same reads verified on two worker threads (started in the first round).
      const pooled = new ZooClient({
        url: a.url,
        cacheDir: cache,
        offline: true,
        progress: false,
        verifyWorkers: 2,
      });
      const onWorkers = async () => {
        add(
          "warm: SDK readFiles, verified on 2 workers",
          await timed(() => pooled.readFiles(doc, names)),
        );
      };
      const warm = [readAlone, verified, onWorkers];
      for (const f of r % 2 ? warm.reverse() : warm) await f();
      add(
        "warm: SDK loadModel",
        await timed(async () => (await zoo.loadModel(`${MODEL}@1.0.0`)).dispose()),
      );
      if (profile && r === rounds - 1) {
        log("profiling the pull's stages");
        profileRows = await stages(a, shardFiles.map((f) => f.digest), root);
        log("profiling a cold pull and a warm load, and SHA-256 implementations");
        profileRows.push(...await profiles(a, root));
        profileRows.push(...await hashRows(shardFiles.map((f) => f.path)));
      }
      await Deno.remove(cache, { recursive: true });
    } finally {
      await a.stop();
      await b.stop();
    }
  }
  await nginx?.stop();
  await Deno.remove(dir, { recursive: true });
  return { result: { mib, bytes, rounds: out }, profileRows };
}

function fmt(x: number, digits = 2): string {
  return x.toFixed(digits);
}

function report(
  results: SizeResult[],
  profileRows: ProfileRow[],
  profileBytes: number,
  machine: string,
  rounds: number,
  compared?: Awaited<ReturnType<typeof against>>,
): string {
  const lines = [
    "# Checkpoint transfer on loopback",
    "",
    `Generated by \`deno task bench:transfer\` on ${new Date().toISOString().slice(0, 10)}, ` +
    `${rounds} paired rounds per size (medians; the range in brackets), ` +
    "1 GB = 10^9 bytes. Dense checkpoints (no bias) in 32 MiB shards; the registry and nginx " +
    "each run in their own process on the same machine, which other work shared during the run. " +
    "CPU is the client's user + system seconds (for curl, from the shell's `times`); " +
    '"server CPU" is the registry process\'s, from /proc.',
    "",
    "```",
    machine,
    "```",
    "",
  ];
  for (const s of results) {
    lines.push(`## ${s.mib} MiB (${s.bytes / SHARD} shards)`, "");
    lines.push("| measure | GB/s | wall ms | client CPU s | GB per client CPU s |");
    lines.push("| --- | --- | --- | --- | --- |");
    for (const [key, ts] of Object.entries(s.rounds)) {
      if (key.includes("server CPU")) continue;
      const speeds = ts.map((t) => gbps(s.bytes, t.ms));
      const cpu = median(ts.map((t) => t.cpu));
      lines.push(
        `| ${key} | ${fmt(median(speeds))} [${fmt(Math.min(...speeds))}–${
          fmt(Math.max(...speeds))
        }] | ${fmt(median(ts.map((t) => t.ms)), 0)} | ${fmt(cpu)} | ${
          cpu > 0 ? fmt(s.bytes / 1e9 / cpu) : "–"
        } |`,
      );
    }
    lines.push("");
    const server = Object.entries(s.rounds).filter(([k]) => k.includes("server CPU"));
    lines.push(
      "Registry CPU seconds per transfer (median): " +
        server.map(([k, ts]) =>
          `${k.replace(" server CPU", "")} ${fmt(median(ts.map((t) => t.cpu)))}`
        )
          .join(", ") +
        ".",
      "",
    );
    const rss = (s.rounds["pull: SDK"] ?? []).map((t) => t.rssMiB ?? 0);
    if (rss.length) {
      lines.push(
        `Peak RSS of the pulling process (VmHWM): ${
          rss.map((x) => `${fmt(x, 0)} MiB`).join(", ")
        }.`,
        "",
      );
    }
    const pull = median((s.rounds["pull: SDK"] ?? []).map((t) => gbps(s.bytes, t.ms)));
    const verify = median(
      (s.rounds["warm: SDK readFiles (read + verify)"] ?? []).map((t) => gbps(s.bytes, t.ms)),
    );
    const publish = median((s.rounds["publish: SDK"] ?? []).map((t) => gbps(s.bytes, t.ms)));
    lines.push(
      `Targets: cold pull ${fmt(pull)} GB/s (target ≥ ${TARGETS.pull}), warm verification ${
        fmt(verify)
      } GB/s (≥ ${TARGETS.verify}), publish ${fmt(publish)} GB/s (≥ ${TARGETS.publish}).`,
      "",
    );
  }
  if (profileRows.length) {
    lines.push(
      `## Where a cold pull's time goes (${profileBytes >> 20} MiB, measured one stage at a time)`,
    );
    for (const r of profileRows) {
      if (r === profileRows[0] || r.section !== undefined) {
        lines.push(
          ...(r.section === undefined ? [] : ["", `## ${r.section}, ${profileBytes >> 20} MiB`]),
          "",
          "| stage | GB/s | wall ms | CPU s | GB per CPU s |",
          "| --- | --- | --- | --- | --- |",
        );
      }
      lines.push(
        `| ${r.label} | ${fmt(gbps(profileBytes, r.t.ms))} | ${fmt(r.t.ms, 0)} | ${
          fmt(r.t.cpu)
        } | ${r.t.cpu > 0 ? fmt(profileBytes / 1e9 / r.t.cpu) : "–"} |`,
      );
    }
    lines.push("");
    for (const r of profileRows.filter((r) => r.note !== undefined)) {
      lines.push(`- ${r.label}: ${r.note}`);
    }
    lines.push("");
  }
  if (compared) {
    const bytes = compared.mib << 20;
    const med = (ts: Timed[] = []) => ({
      ms: median(ts.map((t) => t.ms)),
      cpu: median(ts.map((t) => t.cpu)),
    });
    lines.push(
      `## Against \`${compared.ref}\` (${compared.mib} MiB, separate processes, alternating; medians)`,
      "",
      `| measure | \`${compared.ref}\`: wall ms, CPU s, GB/s | this: wall ms, CPU s, GB/s | speed-up |`,
      "| --- | --- | --- | --- |",
    );
    for (const [key, sides] of Object.entries(compared.rows)) {
      const a = med(sides[compared.ref]);
      const b = med(sides["this"]);
      lines.push(
        `| ${key} | ${fmt(a.ms, 0)}, ${fmt(a.cpu)}, ${fmt(gbps(bytes, a.ms))} | ${fmt(b.ms, 0)}, ${
          fmt(b.cpu)
        }, ${fmt(gbps(bytes, b.ms))} | ${fmt(a.ms / b.ms)}× |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const flags = parseArgs(Deno.args, {
    string: ["sizes", "rounds", "against", "child"],
    boolean: ["help", "no-write"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    Deno.exit(0);
  }
  if (flags.child !== undefined) {
    const [sdk, json] = flags._.map(String);
    await runChild(String(flags.child), sdk!, json!);
    Deno.exit(0);
  }
  const sizes = String(flags.sizes ?? "256,1024").split(",").map(Number);
  const rounds = Number(flags.rounds ?? 3);
  if (sizes.some((s) => !Number.isInteger(s) || s <= 0 || s % 32 !== 0)) {
    throw new TypeError(`Invalid --sizes "${flags.sizes}": use MiB multiples of 32, e.g. 256,1024`);
  }
  await tf.setBackend("cpu");
  const root = await Deno.makeTempDir({ prefix: "bench-transfer-" });
  try {
    const results: SizeResult[] = [];
    let profileRows: ProfileRow[] = [];
    for (const [i, mib] of sizes.entries()) {
      const m = await measureSize(root, mib, rounds, i === 0);
      results.push(m.result);
      if (i === 0) profileRows = m.profileRows;
    }
    const compared = flags.against === undefined
      ? undefined
      : await against(root, String(flags.against), sizes[0] ?? 256, Math.max(rounds, 5));
    const text = report(
      results,
      profileRows,
      (sizes[0] ?? 0) << 20,
      await lscpu(),
      rounds,
      compared,
    );
    console.log(text);
    if (!flags["no-write"]) {
      await writeReport(new URL("./results/transfer.md", import.meta.url), text);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
