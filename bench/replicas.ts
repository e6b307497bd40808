/**
 * The registry as replicas on PostgreSQL + S3, behind Debian's nginx as the
 * load balancer, in paired rounds on one machine:
 *
 * 1. metadata: `GET /api/models/:ns/:name` (a read) and
 *    `GET /api/models/:ns/:name/:version` (a read that counts a download in
 *    PostgreSQL) through nginx to one replica, then to two (req/s, p99);
 * 2. a 16 MiB blob: proxied by the registry, against `--blob-redirect` (the
 *    client follows the 302 to the S3 server), in MB/s (10^6 bytes);
 * 3. the same blob on the embedded store, `registry/main.ts --workers 1` and
 *    `--workers 2` (one process per core on one port) against nginx as it is
 *    deployed (`worker_processes 2`, `sendfile on`) serving the same file,
 *    with wrk `-t2 -c8`.
 *
 * Needs `ZOO_TEST_DATABASE_URL` and `ZOO_TEST_BLOBS_URL` with AWS_* (run
 * `source .ci/services.sh` first: a throwaway PostgreSQL cluster and
 * s3rver), nginx, and wrk for the metadata runs (installed with apt-get when
 * missing and root). Blob runs use keep-alive fetch loops in this process,
 * since wrk does not follow redirects. Writes `bench/results/replicas.md`.
 *
 * Usage: `deno task bench:replicas [--duration 5] [--rounds 3] [--no-write]`
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { createToken } from "../registry/auth.ts";
import { openStore } from "../registry/storage/open.ts";
import { freshBlobsUrl, freshDatabase } from "../tests/registry/storage/_servers.ts";
import { BENCH_MODEL, publishBenchModel } from "./_registry_fixture.ts";
import { type LoadResult, runFetchLoops, startNginx, staticSite, wrkRunner } from "./_load.ts";
import { ensureTool, freePort, stopChild, waitForPort } from "./_net.ts";
import { lscpu, median, writeReport } from "./_report.ts";

/** Connections of the metadata runs. */
const META_CONNECTIONS = 64;
/** Connections of the blob runs. */
const BLOB_CONNECTIONS = 8;

function startReplica(port: number, flags: string[]): { stop(): Promise<void> } {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "registry/main.ts", "--port", String(port), "--no-seed", ...flags],
    cwd: new URL("../", import.meta.url).pathname,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  return { stop: () => stopChild(child, "SIGTERM") };
}

/**
 * nginx as the load balancer: one site per entry of `upstreams`, proxying to
 * its replicas over upstream keep-alive connections.
 */
async function startBalancer(
  dir: string,
  upstreams: Record<string, number[]>,
): Promise<{ ports: Record<string, number>; stop(): Promise<void> }> {
  const ports: Record<string, number> = {};
  const blocks = Object.entries(upstreams).map(([name, backends]) => {
    const port = freePort();
    ports[name] = port;
    return `upstream ${name} {
    ${backends.map((p) => `server 127.0.0.1:${p};`).join("\n    ")}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://${name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }`;
  });
  const nginx = await startNginx(dir, { workers: 1, blocks, ports: Object.values(ports) });
  return { ports, stop: nginx.stop };
}

async function main(): Promise<void> {
  const flags = parseArgs(Deno.args, {
    string: ["duration", "rounds"],
    boolean: ["no-write", "help"],
  });
  if (flags.help) {
    console.log("Usage: deno task bench:replicas [--duration 5] [--rounds 3] [--no-write]");
    return;
  }
  const seconds = Number(flags.duration ?? 5);
  const rounds = Number(flags.rounds ?? 3);
  if (!Deno.env.get("ZOO_TEST_DATABASE_URL") || !Deno.env.get("ZOO_TEST_BLOBS_URL")) {
    throw new Error(
      "Cannot run: set ZOO_TEST_DATABASE_URL and ZOO_TEST_BLOBS_URL (source .ci/services.sh starts PostgreSQL and s3rver and sets them)",
    );
  }
  if (!(await ensureTool("nginx", "nginx"))) throw new Error("Cannot run: nginx is missing");
  if (!(await ensureTool("wrk", "wrk"))) throw new Error("Cannot run: wrk is missing");
  const tmp = await Deno.makeTempDir({ prefix: "zoo-bench-replicas-" });
  const db = await freshDatabase();
  const blobsUrl = freshBlobsUrl();
  const stops: (() => Promise<void>)[] = [];
  try {
    const size = 16 * 1024 * 1024;
    const weights = `${tmp}/weights.bin`;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
    await Deno.writeFile(weights, bytes);
    const store = await openStore({ data: tmp, databaseUrl: db.url, blobsUrl });
    const blob = await publishBenchModel(store, weights);
    await createToken(store, ["read"], "bench");
    await store.close();

    const [p1, p2, p3] = [freePort(), freePort(), freePort()];
    for (const [p, extra] of [[p1, []], [p2, []], [p3, ["--blob-redirect"]]] as const) {
      const r = startReplica(p, [
        "--workers",
        "1",
        "--database-url",
        db.url,
        "--blobs",
        blobsUrl,
        ...extra,
      ]);
      stops.push(() => r.stop());
    }
    for (const p of [p1, p2, p3]) await waitForPort(p);
    const nginx = await startBalancer(`${tmp}/nginx`, {
      one: [p1],
      two: [p1, p2],
      redirect: [p3],
    });
    stops.unshift(() => nginx.stop());
    const wrk = await wrkRunner(tmp);

    const { namespace, name, version } = BENCH_MODEL;
    const paths = {
      model: `/api/models/${namespace}/${name}`,
      version: `/api/models/${namespace}/${name}/${version}`,
    };
    const meta: Record<string, LoadResult[]> = {};
    for (let round = 0; round < rounds; round++) {
      for (const [doc, path] of Object.entries(paths)) {
        for (const lb of ["one", "two"]) {
          const r = await wrk(`http://127.0.0.1:${nginx.ports[lb]}${path}`, {
            connections: META_CONNECTIONS,
            seconds,
            threads: 1,
          });
          (meta[`${doc} ${lb}`] ??= []).push(r);
          console.error(
            `round ${round + 1} ${doc} via ${lb}: ${
              (r.requests / r.seconds).toFixed(0)
            } req/s, p99 ${r.p99Ms.toFixed(1)} ms, ${r.errors} errors`,
          );
        }
      }
    }
    const blobPath = `/api/blobs/${blob.digest}`;
    const blobs: Record<string, LoadResult[]> = {};
    for (let round = 0; round < rounds; round++) {
      for (const lb of ["one", "redirect"]) {
        const r = await runFetchLoops(`http://127.0.0.1:${nginx.ports[lb]}${blobPath}`, {
          connections: BLOB_CONNECTIONS,
          seconds,
          size,
        });
        (blobs[lb] ??= []).push(r);
        console.error(
          `round ${round + 1} blob via ${lb}: ${
            (r.bytes / r.seconds / 1e6).toFixed(0)
          } MB/s, ${r.errors} errors`,
        );
      }
    }

    const errs = (rs: LoadResult[]) => rs.reduce((n, r) => n + r.errors, 0);
    // Part 3: the embedded store, one process per core, against nginx as deployed.
    const data = `${tmp}/embedded`;
    const staticDir = `${tmp}/static`;
    await Deno.mkdir(staticDir);
    await Deno.copyFile(weights, `${staticDir}/weights.bin`);
    // nginx's workers run as nobody when started as root.
    await Deno.chmod(tmp, 0o755);
    await Deno.chmod(staticDir, 0o755);
    await Deno.chmod(`${staticDir}/weights.bin`, 0o644);
    const embedded = await openStore({ data });
    await publishBenchModel(embedded, weights);
    await embedded.close();
    const [w1, w2] = [freePort(), freePort()];
    for (const [p, n] of [[w1, "1"], [w2, "2"]] as const) {
      const r = startReplica(p, ["--data", data, "--workers", n]);
      stops.push(() => r.stop());
      await waitForPort(p);
    }
    // Let the second process of --workers 2 bind before measuring.
    await new Promise((r) => setTimeout(r, 3000));
    const staticPort = freePort();
    const deployed = await startNginx(`${tmp}/nginx-static`, {
      workers: 2,
      blocks: [staticSite(staticPort, staticDir)],
      ports: [staticPort],
    });
    stops.unshift(() => deployed.stop());
    const direct: Record<string, LoadResult[]> = {};
    const targets: Record<string, string> = {
      "nginx (worker_processes 2, sendfile)": `http://127.0.0.1:${staticPort}/weights.bin`,
      "registry --workers 1": `http://127.0.0.1:${w1}${blobPath}`,
      "registry --workers 2": `http://127.0.0.1:${w2}${blobPath}`,
    };
    for (let round = 0; round < rounds; round++) {
      for (const [k, url] of Object.entries(targets)) {
        const r = await wrk(url, {
          connections: BLOB_CONNECTIONS,
          seconds,
          threads: 2,
        });
        (direct[k] ??= []).push(r);
        console.error(
          `round ${round + 1} ${k}: ${
            (r.bytes / r.seconds / 1e6).toFixed(0)
          } MB/s, ${r.errors} errors`,
        );
      }
    }
    const nginxMbps = median(
      direct["nginx (worker_processes 2, sendfile)"]!.map((r) => r.bytes / r.seconds / 1e6),
    );
    const directRows = Object.entries(direct).map(([k, rs]) => {
      const m = median(rs.map((r) => r.bytes / r.seconds / 1e6));
      return `| ${k} | ${m.toFixed(0)} | ${(100 * m / nginxMbps).toFixed(0)}% | ${errs(rs)} | ${
        rs.map((r) => (r.bytes / r.seconds / 1e6).toFixed(0)).join(", ")
      } |`;
    });

    const rps = (rs: LoadResult[]) => median(rs.map((r) => r.requests / r.seconds));
    const p99 = (rs: LoadResult[]) => median(rs.map((r) => r.p99Ms));
    const rows = Object.entries(meta).map(([k, rs]) =>
      `| ${k.replace(" one", ", one replica").replace(" two", ", two replicas")} | ${
        rps(rs).toFixed(0)
      } | ${p99(rs).toFixed(1)} | ${errs(rs)} | ${
        rs.map((r) => (r.requests / r.seconds).toFixed(0)).join(", ")
      } |`
    );
    const blobRows = Object.entries(blobs).map(([k, rs]) =>
      `| ${k === "one" ? "proxied by the registry" : "--blob-redirect (302 to s3rver)"} | ${
        median(rs.map((r) => r.bytes / r.seconds / 1e6)).toFixed(0)
      } | ${errs(rs)} | ${rs.map((r) => (r.bytes / r.seconds / 1e6).toFixed(0)).join(", ")} |`
    );
    const report = `# Registry replicas on PostgreSQL + S3 behind nginx

Generated by \`deno task bench:replicas --duration ${seconds} --rounds ${rounds}\` on ${
      new Date().toISOString()
    }.

- Machine (other work shared it while this ran):
\`\`\`
${await lscpu()}
\`\`\`
- Everything on 127.0.0.1: PostgreSQL 15 (throwaway cluster, fsync off), s3rver 3.7.1, registry
  replicas (\`registry/main.ts --workers 1\`), Debian's nginx (\`worker_processes 1\`, upstream
  keepalive 64). Medians of ${rounds} rounds of ${seconds} s; the two sides of each row pair run back
  to back in every round.

## Metadata (wrk -t1 -c${META_CONNECTIONS}, through nginx)

The model document is a read; the version document also counts a download (one UPDATE).

| request | req/s (median) | p99 ms (median) | errors | req/s per round |
| ------- | -------------- | --------------- | ------ | --------------- |
${rows.join("\n")}

## 16 MiB blob (${BLOB_CONNECTIONS} keep-alive fetch loops in the bench process, through nginx)

| path | MB/s (median) | errors | MB/s per round |
| ---- | ------------- | ------ | -------------- |
${blobRows.join("\n")}

## 16 MiB blob on the embedded store, one process per core (wrk -t2 -c${BLOB_CONNECTIONS}, direct)

| server | MB/s (median) | of nginx | errors | MB/s per round |
| ------ | ------------- | -------- | ------ | -------------- |
${directRows.join("\n")}
`;
    console.log(report);
    if (!flags["no-write"]) {
      await writeReport(new URL("./results/replicas.md", import.meta.url), report);
    }
  } finally {
    for (const s of stops) await s().catch(() => {});
    await db.drop();
    await Deno.remove(tmp, { recursive: true });
  }
}

if (import.meta.main) await main();
