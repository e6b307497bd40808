/**
 * Registry throughput and latency, side by side with a static file server
 * serving the same bytes from the same disk, in one run on one machine:
 *
 * 1. blob download: a 16 MiB blob, 8 keep-alive connections each fetching it
 *    whole, over and over, for a fixed time (MB/s, 1 MB = 10^6 bytes);
 * 2. metadata: `GET /api/models/:ns/:name/:ref` and `GET /api/models/:ns/:name`
 *    at 64 connections (req/s, p50, p99), against the static server serving
 *    the same version document as a file.
 *
 * The registry runs in its own process (`_registry_server.ts`). The static
 * server is nginx (installed with apt-get when missing and root), else Deno's
 * own (`Deno.serve` streaming `Deno.open`). The load generator is wrk, else an
 * in-process fetch loop. Diagnostic rows (bare `Deno.serve` without Hono,
 * down to the version document answered from memory, the floor of any
 * `Deno.serve` answer) and an in-process profile of the store split the registry's cost into its
 * parts. Writes `bench/results/registry.md`; a hand-written part after the
 * `<!-- findings -->` line of that file is kept.
 *
 * Usage: `deno task bench:registry [--duration 5] [--rounds 3] [--threads 1] [--no-write]`
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import { createRegistryApp } from "../registry/app.ts";
import { storageLayout } from "../registry/storage/paths.ts";
import { openSqliteFsStore } from "../registry/storage/sqlite_fs.ts";
import { BENCH_MODEL, publishBenchModel } from "./_registry_fixture.ts";
import { type LoadResult, runFetchLoops, startNginx, staticSite, wrkRunner } from "./_load.ts";
import { ensureTool, freePort, output, stopChild } from "./_net.ts";
import { writeReport } from "./_report.ts";

const HELP = `Usage: deno task bench:registry [flags]

Measures the registry's blob download throughput and metadata latency against
a static file server (nginx, else Deno's) on loopback, and writes
bench/results/registry.md.

Flags:
  --duration <s>   seconds per measured run                    (default 5)
  --rounds <n>     interleaved rounds; the median is reported (default 3)
  --threads <n>    wrk threads                                 (default 1)
  --blob-mib <n>   blob size in MiB                            (default 16)
  --no-write       print the table, leave the results file alone
  -h, --help       this text

Environment: none. Needs nginx and wrk for the preferred setup; as root it
installs them with apt-get when missing, else it falls back to Deno's own.`;

/** Connections of the blob download runs. */
const BLOB_CONNECTIONS = 8;
/** Connections of the metadata runs. */
const META_CONNECTIONS = 64;
/** Metadata p99 target at {@linkcode META_CONNECTIONS} connections, in ms. */
const META_P99_TARGET_MS = 5;
/** Blob download target, as a share of the static server's throughput. */
const BLOB_SHARE_TARGET = 0.9;

/** A load run to make. */
interface Case {
  key: string;
  label: string;
  url: string;
  connections: number;
}

type Cleanup = () => Promise<void> | void;

function log(message: string): void {
  console.error(`[bench:registry] ${message}`);
}

/** What `_registry_server.ts` prints once it serves. */
interface ServerInfo {
  registry: number;
  diagnostic: number;
  namespace: string;
  name: string;
  version: string;
  digest: string;
  size: number;
}

async function startRegistry(
  dataDir: string,
  blobFile: string,
  staticDir: string,
  cleanups: Cleanup[],
): Promise<ServerInfo> {
  const script = new URL("./_registry_server.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "--data", dataDir, "--blob", blobFile, "--static", staticDir],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  cleanups.push(() => stopChild(child, "SIGTERM"));
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const firstLine = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("The registry server exited before it printed its ports");
      buffered += value;
      const nl = buffered.indexOf("\n");
      if (nl >= 0) return buffered.slice(0, nl);
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const line = await Promise.race([
    firstLine,
    new Promise<never>((_, reject) =>
      timer = setTimeout(
        () => reject(new Error("The registry server did not start within 120 s")),
        120_000,
      )
    ),
  ]).finally(() => clearTimeout(timer));
  // Keep draining so a late write never blocks the server.
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return JSON.parse(line) as ServerInfo;
}

async function startStaticNginx(
  tmp: string,
  staticDir: string,
  cleanups: Cleanup[],
): Promise<number> {
  const port = freePort();
  // One worker: the registry is one process with one JS thread, and wrk
  // needs the other core of a small machine.
  const nginx = await startNginx(`${tmp}/nginx`, {
    workers: 1,
    blocks: [staticSite(port, staticDir)],
    ports: [port],
  });
  cleanups.push(() => nginx.stop());
  return port;
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function fetchBytes(url: string): Promise<Uint8Array<ArrayBuffer>> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Times `fn` until `maxN` calls or `maxMs` pass: wall mean and p99, and CPU
 * time (user + system) per call, which other processes on a shared machine
 * distort much less than wall time, all in µs.
 */
async function timeOp(
  fn: () => Promise<unknown>,
  maxN = 2000,
  maxMs = 1500,
): Promise<{ n: number; meanUs: number; p99Us: number; cpuUs: number }> {
  for (let i = 0; i < 50; i++) await fn();
  const samples: number[] = [];
  const until = performance.now() + maxMs;
  const cpu0 = process.cpuUsage();
  while (samples.length < maxN && performance.now() < until) {
    const t0 = performance.now();
    await fn();
    samples.push((performance.now() - t0) * 1000);
  }
  const cpu = process.cpuUsage(cpu0);
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
  const p99 = samples[Math.min(samples.length - 1, Math.floor(0.99 * samples.length))] ?? NaN;
  return {
    n: samples.length,
    meanUs: mean,
    p99Us: p99,
    cpuUs: (cpu.user + cpu.system) / samples.length,
  };
}

/**
 * Costs inside one process, with nothing else running: store operations,
 * and whole routes through `app.request()` (Hono and handlers, no sockets).
 * Blob streams are left to the HTTP diagnostic rows: drained in process on a
 * busy machine their rates swung 2-5x between identical rounds.
 */
async function profile(dir: string, blobFile: string): Promise<string[][]> {
  const store = await openSqliteFsStore(dir);
  try {
    await publishBenchModel(store, blobFile);
    const app = createRegistryApp({ store });
    const { namespace: ns, name, version } = BENCH_MODEL;
    const rows: string[][] = [];
    const op = async (what: string, fn: () => Promise<unknown>) => {
      const t = await timeOp(fn);
      rows.push([what, t.meanUs.toFixed(0), t.p99Us.toFixed(0), t.cpuUs.toFixed(0), String(t.n)]);
    };
    const request = (path: string) => async () => {
      const res = await app.request(path);
      await res.arrayBuffer();
    };
    await op("`app.request` GET /healthz (Hono + middleware floor)", request("/healthz"));
    await op(`\`app.request\` GET /api/models/${ns}/${name}`, request(`/api/models/${ns}/${name}`));
    await op(
      `\`app.request\` GET /api/models/${ns}/${name}/${version}`,
      request(`/api/models/${ns}/${name}/${version}`),
    );
    await op("`store.getModel`", () => store.getModel(ns, name));
    await op("`store.getVersion`", () => store.getVersion(ns, name, version));
    await op(
      "`store.revision` (other processes' writes: the WAL index header, then PRAGMA data_version if it moved)",
      () => store.revision(ns, name),
    );
    await op(
      "`store.countDownload` (in memory, written about once a second)",
      () => store.countDownload(ns, name, version),
    );
    // What counting cost when each GET ran its own UPDATE, on a second
    // connection, to price the fsync per commit.
    const db = new DatabaseSync(storageLayout(dir).database, { timeout: 10_000 });
    try {
      const update = db.prepare(
        `UPDATE versions SET downloads = downloads + 1
         WHERE version = ? AND model_id = (SELECT id FROM models WHERE namespace = ? AND name = ?)`,
      );
      for (const mode of ["FULL", "NORMAL"]) {
        db.exec(`PRAGMA synchronous = ${mode}`);
        await op(
          `same UPDATE, WAL, synchronous=${mode}`,
          () => Promise.resolve(update.run(version, ns, name)),
        );
      }
    } finally {
      db.close();
    }
    return rows;
  } finally {
    await store.close();
  }
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

function mbps(r: LoadResult): number {
  return r.bytes / 1e6 / r.seconds;
}

function rps(r: LoadResult): number {
  return r.requests / r.seconds;
}

async function main(): Promise<void> {
  const flags = parseArgs(Deno.args, {
    string: ["duration", "rounds", "threads", "blob-mib"],
    boolean: ["no-write", "help"],
    alias: { h: "help" },
    default: { duration: "5", rounds: "3", threads: "1", "blob-mib": "16" },
  });
  if (flags.help) {
    console.log(HELP);
    return;
  }
  const num = (flag: string) => {
    const n = Number(flags[flag]);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`Invalid --${flag} "${flags[flag]}": use a whole number of at least 1`);
    }
    return n;
  };
  const seconds = num("duration");
  const rounds = num("rounds");
  const threads = num("threads");
  const blobMib = num("blob-mib");
  const command = ["deno task bench:registry", ...Deno.args].join(" ");

  const loadBefore = Deno.loadavg();
  const started = new Date();
  const cleanups: Cleanup[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "bench-registry-" });
  cleanups.push(() => Deno.remove(tmp, { recursive: true }).catch(() => {}));
  const cleanUp = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };
  const onSignal = () => {
    cleanUp().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  try {
    const [haveNginx, haveWrk] = [
      await ensureTool("nginx", "nginx", log),
      await ensureTool("wrk", "wrk", log),
    ];
    const staticDir = `${tmp}/static`;
    // nginx's worker drops root for "nobody", which must reach the files.
    await Deno.chmod(tmp, 0o755);
    await Deno.mkdir(staticDir, { mode: 0o755 });
    const blobFile = `${staticDir}/blob.bin`;
    const blob = new Uint8Array(blobMib * 1024 * 1024);
    for (let at = 0; at < blob.length; at += 65536) {
      crypto.getRandomValues(blob.subarray(at, at + 65536));
    }
    await Deno.writeFile(blobFile, blob);
    const blobDigest = await sha256(blob);

    log("starting the registry server");
    const server = await startRegistry(`${tmp}/data`, blobFile, staticDir, cleanups);
    if (server.digest !== blobDigest) throw new Error("The server stored a different blob");
    const reg = `http://127.0.0.1:${server.registry}`;
    const diag = `http://127.0.0.1:${server.diagnostic}`;
    const versionPath = `/api/models/${server.namespace}/${server.name}/${server.version}`;
    const modelPath = `/api/models/${server.namespace}/${server.name}`;
    const versionDoc = await fetchBytes(reg + versionPath);
    const modelDoc = await fetchBytes(reg + modelPath);
    await Deno.writeFile(`${staticDir}/version.json`, versionDoc);

    let staticName: string;
    let staticBase: string;
    if (haveNginx) {
      log("starting nginx");
      staticBase = `http://127.0.0.1:${await startStaticNginx(tmp, staticDir, cleanups)}`;
      staticName = "nginx";
    } else {
      log("nginx is unavailable: Deno's own static server is the baseline");
      staticBase = `${diag}/file`;
      staticName = "Deno static";
    }
    for (const url of [`${reg}/api/blobs/${blobDigest}`, `${staticBase}/blob.bin`]) {
      if (await sha256(await fetchBytes(url)) !== blobDigest) {
        throw new Error(`GET ${url} answered other bytes than the blob`);
      }
    }

    const blobCases: Case[] = [
      { key: "static", label: staticName, url: `${staticBase}/blob.bin` },
      { key: "registry", label: "registry", url: `${reg}/api/blobs/${blobDigest}` },
      { key: "denoFile", label: "diag: Deno.serve + Deno.open", url: `${diag}/file/blob.bin` },
      {
        key: "denoStore",
        label: "diag: Deno.serve + store.blobs.read",
        url: `${diag}/store/${blobDigest}`,
      },
    ].map((c) => ({ ...c, connections: BLOB_CONNECTIONS }));
    const metaCases: Case[] = [
      {
        key: "static",
        label: `${staticName} (version doc as a file)`,
        url: `${staticBase}/version.json`,
      },
      { key: "version", label: `registry ${versionPath}`, url: reg + versionPath },
      { key: "model", label: `registry ${modelPath}`, url: reg + modelPath },
      {
        key: "denoFile",
        label: "diag: Deno.serve + Deno.open (same file)",
        url: `${diag}/file/version.json`,
      },
      {
        key: "denoMemory",
        label: "diag: Deno.serve, same bytes from memory",
        url: `${diag}/memory/version.json`,
      },
    ].map((c) => ({ ...c, connections: META_CONNECTIONS }));
    const allCases = [
      ...blobCases.filter((c) => haveNginx || c.key !== "denoFile").map((c) => ({
        ...c,
        key: `blob.${c.key}`,
      })),
      ...metaCases.filter((c) => haveNginx || c.key !== "denoFile").map((c) => ({
        ...c,
        key: `meta.${c.key}`,
      })),
    ];

    const wrk = haveWrk ? await wrkRunner(tmp) : undefined;
    const load = (c: Case, s: number) =>
      wrk
        ? wrk(c.url, { connections: c.connections, seconds: s, threads })
        : runFetchLoops(c.url, { connections: c.connections, seconds: s });

    const runs = new Map<string, LoadResult[]>();
    for (const c of allCases) await load(c, 1); // warm up JIT, page cache, connections
    for (let round = 1; round <= rounds; round++) {
      for (const c of allCases) {
        log(`round ${round}/${rounds}: ${c.key} (${c.connections} connections, ${seconds} s)`);
        const r = await load(c, seconds);
        runs.set(c.key, [...(runs.get(c.key) ?? []), r]);
      }
    }
    await cleanUp(); // servers stop before the in-process profile
    const profileTmp = await Deno.makeTempDir({ prefix: "bench-registry-profile-" });
    cleanups.push(() => Deno.remove(profileTmp, { recursive: true }).catch(() => {}));
    await Deno.writeFile(`${profileTmp}/blob.bin`, blob);
    log("profiling in process");
    const profileRows = await profile(`${profileTmp}/data`, `${profileTmp}/blob.bin`);
    const loadAfter = Deno.loadavg();

    const score = (key: string, r: LoadResult) => key.startsWith("blob.") ? mbps(r) : rps(r);
    const sorted = (key: string): LoadResult[] =>
      [...(runs.get(key) ?? [])].sort((a, b) => score(key, a) - score(key, b));
    /** The median round by throughput (the lower middle one for an even count). */
    const get = (key: string): LoadResult => {
      const all = sorted(key);
      const r = all[Math.floor((all.length - 1) / 2)];
      if (!r) throw new Error(`No result for ${key}`);
      return r;
    };
    const spread = (key: string): string => {
      const all = sorted(key).map((r) => score(key, r).toFixed(0));
      return all.length > 1 ? `${all[0]}–${all.at(-1)}` : "";
    };
    const errorsOf = (r: LoadResult) => (r.errors > 0 ? ` (${r.errors} errors)` : "");
    // A row: label, throughput with errors, its range, the kind's own columns, share of static.
    const rowsOf = (kind: "blob" | "meta", columns: (r: LoadResult, c: Case) => string[]) =>
      allCases.filter((c) => c.key.startsWith(`${kind}.`)).map((c) => {
        const r = get(c.key);
        const share = score(c.key, r) / score(`${kind}.static`, get(`${kind}.static`));
        return [
          c.label,
          score(c.key, r).toFixed(0) + errorsOf(r),
          spread(c.key),
          ...columns(r, c),
          `${(share * 100).toFixed(0)}%`,
        ];
      });
    const blobRows = rowsOf("blob", (r) => [
      rps(r).toFixed(1),
      r.p50Ms.toFixed(1),
      r.p99Ms.toFixed(1),
    ]);
    const metaRows = rowsOf("meta", (r, c) => [
      r.p50Ms.toFixed(2),
      r.p99Ms.toFixed(2),
      (c.connections / rps(r) * 1000).toFixed(2),
    ]);

    const blobShare = mbps(get("blob.registry")) / mbps(get("blob.static"));
    const versionP99 = get("meta.version").p99Ms;
    const modelP99 = get("meta.model").p99Ms;
    const pass = (ok: boolean) => (ok ? "**PASS**" : "**FAIL**");
    const verdict = [
      `- Blob download ≥ ${BLOB_SHARE_TARGET * 100}% of ${staticName}: ${
        pass(blobShare >= BLOB_SHARE_TARGET)
      } — ${(blobShare * 100).toFixed(0)}% (${mbps(get("blob.registry")).toFixed(0)} vs ${
        mbps(get("blob.static")).toFixed(0)
      } MB/s).`,
      `- Metadata p99 < ${META_P99_TARGET_MS} ms at ${META_CONNECTIONS} connections, version document: ${
        pass(versionP99 < META_P99_TARGET_MS)
      } — ${versionP99.toFixed(2)} ms.`,
      `- Metadata p99 < ${META_P99_TARGET_MS} ms at ${META_CONNECTIONS} connections, model document: ${
        pass(modelP99 < META_P99_TARGET_MS)
      } — ${modelP99.toFixed(2)} ms.`,
    ].join("\n");

    // Each row: the registry's figure, the static server's, and their ratio.
    const summaryRows = ([
      ["blob MB/s", "blob.registry", "blob.static", mbps, 0, 2],
      ["metadata req/s (version doc)", "meta.version", "meta.static", rps, 0, 2],
      ["metadata p50 ms (version doc)", "meta.version", "meta.static", (r) => r.p50Ms, 2, 1],
      ["metadata p99 ms (version doc)", "meta.version", "meta.static", (r) => r.p99Ms, 2, 1],
      ["metadata req/s (model doc)", "meta.model", "meta.static", rps, 0, 2],
      ["metadata p99 ms (model doc)", "meta.model", "meta.static", (r) => r.p99Ms, 2, 1],
    ] as const satisfies [string, string, string, (r: LoadResult) => number, number, number][])
      .map(([label, key, base, measure, digits, ratioDigits]) => {
        const [a, b] = [measure(get(key)), measure(get(base))];
        return [label, a.toFixed(digits), b.toFixed(digits), (a / b).toFixed(ratioDigits)];
      });
    const cpu = (await output("lscpu", [])).text.split("\n").find((l) =>
      l.startsWith("Model name:")
    )
      ?.replace("Model name:", "").trim() ?? "unknown";
    const nproc = (await output("nproc", [])).text.trim() || String(navigator.hardwareConcurrency);
    const memGiB = (Deno.systemMemoryInfo().total / 1024 ** 3).toFixed(1);
    const nginxVersion = haveNginx
      ? (await output("nginx", ["-v"])).text.trim().replace("nginx version: nginx/", "")
      : "not used";
    const wrkVersion = haveWrk
      ? (await output("wrk", ["-v"])).text.split("\n")[0]?.split(" [")[0]?.replace("wrk ", "")
        .trim() ??
        "?"
      : "not used (in-process fetch loops)";
    const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(", ");

    const report = `# Registry benchmark: blob downloads and metadata reads against a static server

- Date: ${started.toISOString()}
- Command: \`${command}\`
- Machine: ${cpu}, ${nproc} CPUs (nproc), ${memGiB} GiB memory, ${Deno.build.os} ${Deno.build.arch}
- Versions: deno ${Deno.version.deno} (v8 ${Deno.version.v8}), ${
      haveNginx ? `nginx ${nginxVersion}` : "nginx not used"
    }, wrk ${wrkVersion}
- Load average (1, 5, 15 min) before: ${fmtLoad(loadBefore)}; after: ${
      fmtLoad(loadAfter)
    }. The machine is shared: other engineers' tests may have been running.
- Setup: everything on 127.0.0.1. The registry (\`createRegistryApp\` over \`openSqliteFsStore\`, \`Deno.serve\`) runs in its own process (\`bench/_registry_server.ts\`); the blob and the static files sit in one temp dir on the same disk (page cache warm). Static server: ${staticName}${
      haveNginx ? " (1 worker, sendfile on, access log off)" : ""
    }. Load: ${
      haveWrk ? `wrk, ${threads} thread(s), keep-alive` : "in-process fetch loops (wrk unavailable)"
    }; each run ${seconds} s after a 1 s warm-up; ${rounds} interleaved round(s); each row is the median round by throughput (its latencies are that round's), the range spans all rounds. MB = 10^6 bytes.
- Documents: version ${versionDoc.length} bytes, model ${modelDoc.length} bytes; blob ${blob.length} bytes (${blobMib} MiB of random bytes).

## Blob download: ${blobMib} MiB, ${BLOB_CONNECTIONS} connections

${
      table(
        ["server", "MB/s", "MB/s range", "downloads/s", "p50 ms", "p99 ms", `vs ${staticName}`],
        blobRows,
      )
    }

## Metadata: ${META_CONNECTIONS} connections

${
      table([
        "server",
        "req/s",
        "req/s range",
        "p50 ms",
        "p99 ms",
        `${META_CONNECTIONS}/(req/s) ms`,
        `vs ${staticName}`,
      ], metaRows)
    }

\`${META_CONNECTIONS}/(req/s)\` is the mean latency Little's law allows a closed loop of ${META_CONNECTIONS} connections: a p99 under ${META_P99_TARGET_MS} ms needs well over ${
      (META_CONNECTIONS / META_P99_TARGET_MS * 1000).toFixed(0)
    } req/s. The "same bytes from memory" row is the floor of any answer \`Deno.serve\` gives here: the version document's bytes held in memory, with the registry's headers, no routing and no store, in the same minutes as the rows above.

## Summary

${table(["", "registry", staticName, "ratio"], summaryRows)}

## Verdict

${verdict}

## In-process profile (servers stopped, one request at a time)

${table(["what", "wall mean µs (or MB/s)", "wall p99 µs", "CPU µs per call", "n"], profileRows)}
`;
    console.log(report);
    if (!flags["no-write"]) {
      const out = new URL("./results/registry.md", import.meta.url);
      await writeReport(out, report);
      log(`wrote ${out.pathname}`);
    }
  } finally {
    await cleanUp();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) await main();
