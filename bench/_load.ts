/**
 * The load side of the HTTP benchmarks: wrk with a Lua script that reports
 * one JSON line, keep-alive fetch loops in this process where wrk cannot go
 * (it is missing, or the responses redirect), and Debian's nginx started
 * from a generated config, as a baseline or a load balancer.
 *
 * @module
 */
import { output, stopChild, waitForPort } from "./_net.ts";

/** One load run's outcome. */
export interface LoadResult {
  /** Responses completed. */
  requests: number;
  /** Response bytes read. */
  bytes: number;
  /** Wall time of the run. */
  seconds: number;
  /** Failed connections, reads and non-2xx answers (and short bodies, where checked). */
  errors: number;
  /** Median latency, in ms. */
  p50Ms: number;
  /** 99th percentile latency, in ms. */
  p99Ms: number;
}

/** How to load one URL. */
export interface LoadOptions {
  /** Connections kept open at once. */
  connections: number;
  /** How long to run. */
  seconds: number;
}

const WRK_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"bytes":%d,"us":%d,"errors":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/** Loads a URL with wrk; see {@linkcode wrkRunner}. */
export type Wrk = (
  url: string,
  opts: LoadOptions & { threads: number },
) => Promise<LoadResult>;

/**
 * A wrk runner: writes the Lua script that makes wrk report one JSON line
 * into `dir`, and returns a function that loads a URL with wrk (keep-alive,
 * a 30 s request timeout, at most one thread a connection).
 *
 * @param dir a folder of the run, for the script
 * @returns the runner; it throws when wrk fails or prints no report, with its output
 */
export async function wrkRunner(dir: string): Promise<Wrk> {
  const script = `${dir}/report.lua`;
  await Deno.writeTextFile(script, WRK_LUA);
  return async (url, opts) => {
    const args = [
      "-t",
      String(Math.min(opts.threads, opts.connections)),
      "-c",
      String(opts.connections),
      "-d",
      `${opts.seconds}s`,
      "--timeout",
      "30s",
      "-s",
      script,
      url,
    ];
    const { ok, text } = await output("wrk", args);
    const line = text.split("\n").find((l) => l.startsWith("WRKJSON "));
    if (!ok || line === undefined) throw new Error(`wrk ${args.join(" ")} failed:\n${text}`);
    const r = JSON.parse(line.slice("WRKJSON ".length));
    return {
      requests: r.requests,
      bytes: r.bytes,
      seconds: r.us / 1e6,
      errors: r.errors,
      p50Ms: r.p50 / 1000,
      p99Ms: r.p99 / 1000,
    };
  };
}

/**
 * Loads `url` with keep-alive fetch loops in this process, each reading
 * whole responses over and over until the time is up (they follow redirects,
 * which wrk does not).
 *
 * @param url what to request
 * @param opts connections, duration, and the body size every response must
 *   have (a shorter one counts as an error) where it is known
 * @returns what the loops measured
 */
export async function runFetchLoops(
  url: string,
  opts: LoadOptions & { size?: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  let bytes = 0;
  let errors = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  await Promise.all(Array.from({ length: opts.connections }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const res = await fetch(url);
        let n = 0;
        for await (const chunk of res.body ?? []) n += chunk.byteLength;
        bytes += n;
        if (!res.ok || (opts.size !== undefined && n !== opts.size)) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  }));
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    bytes,
    seconds: (performance.now() - start) / 1000,
    errors,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  };
}

/** A running nginx. */
export interface Nginx {
  /** Stops it gracefully (SIGQUIT), killing it after 5 s. */
  stop(): Promise<void>;
}

/**
 * An nginx `server` block serving the files of `root` on 127.0.0.1:`port`.
 *
 * @param port where it listens
 * @param root the folder served
 * @returns the block, for {@linkcode startNginx}
 */
export function staticSite(port: number, root: string): string {
  return `server {
    listen 127.0.0.1:${port};
    root ${root};
  }`;
}

/**
 * Starts nginx in the foreground with its config, pid, logs and temp folders
 * under `prefix`: sendfile on, no access log, keep-alive connections that
 * last the whole run, and `blocks` (`server` and `upstream` blocks) in its
 * `http` block. Returns once every port of `ports` answers.
 *
 * @param prefix an empty folder of the run
 * @param opts worker processes, the blocks, and the ports they listen on
 * @returns the running server
 */
export async function startNginx(
  prefix: string,
  opts: { workers: number; blocks: string[]; ports: number[] },
): Promise<Nginx> {
  await Deno.mkdir(prefix, { recursive: true });
  const conf = `worker_processes ${opts.workers};
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  types { application/octet-stream bin; application/json json; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  ${opts.blocks.join("\n  ")}
}
`;
  await Deno.writeTextFile(`${prefix}/nginx.conf`, conf);
  const child = new Deno.Command("nginx", {
    args: ["-p", prefix, "-e", `${prefix}/error.log`, "-c", `${prefix}/nginx.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const nginx = { stop: () => stopChild(child, "SIGQUIT") };
  try {
    for (const port of opts.ports) await waitForPort(port);
  } catch (e) {
    await nginx.stop();
    throw e;
  }
  return nginx;
}
