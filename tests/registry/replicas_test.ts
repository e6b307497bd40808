/**
 * The registry as stateless replicas: real `registry/main.ts` processes on
 * real ports, all on one PostgreSQL database and one S3 bucket (the servers
 * `.ci/run` starts; skipped with a message without them), driven over HTTP
 * as clients and a load balancer would.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertLess, assertMatch, assertRejects } from "@std/assert";
import postgres from "postgres";
import { AwsClient } from "aws4fetch";
import { parseS3Url } from "../../registry/storage/s3_blobs.ts";
import { ZooClient } from "../../sdk/client/mod.ts";
import { IntegrityError } from "../../sdk/errors.ts";
import {
  digestOf,
  modelFiles,
  publish,
  type TestFile,
  tinyConvnet,
  tinyConvnetFiles,
} from "../_helpers/registry.ts";
import { freePort, mintToken } from "../_helpers/cli.ts";
import { startMain } from "./_main.ts";
import {
  freshBlobsUrl,
  freshDatabase,
  skipWithout,
  type TestDatabase,
} from "./storage/_servers.ts";

await tf.setBackend("cpu");

const ignore = skipWithout({ pg: true, s3: true });

/** One database and one bucket prefix, shared by the replicas of a test. */
interface Cluster {
  db: TestDatabase;
  blobsUrl: string;
  /** Flags every command of this cluster takes. */
  flags: string[];
  /** A `publish:zoo` token minted with `deno task token` on the cluster's store. */
  token: string;
}

async function withCluster(fn: (c: Cluster) => Promise<void>): Promise<void> {
  const db = await freshDatabase();
  const data = await Deno.makeTempDir({ prefix: "zoo-replicas-" });
  const blobsUrl = freshBlobsUrl();
  try {
    // --data points at an empty folder: nothing may land there.
    const flags = ["--database-url", db.url, "--blobs", blobsUrl, "--data", data];
    await fn({ db, blobsUrl, flags, token: await mintToken("publish:zoo", flags) });
    const left: string[] = [];
    for await (const e of Deno.readDir(data)) left.push(e.name);
    assertEquals(left, [], "the data dir stays unused when both URLs are given");
  } finally {
    await db.drop();
    await Deno.remove(data, { recursive: true });
  }
}

interface Replica {
  url: string;
  printed: () => string;
  /** SIGTERM, and waits for a clean exit. */
  stop(): Promise<void>;
  /** SIGKILL, at once. */
  kill(): Promise<void>;
}

async function startReplica(c: Cluster, extra: string[] = ["--no-seed"]): Promise<Replica> {
  const port = freePort();
  const { child, printed, drained, stderr } = await startMain(
    ["--port", String(port), "--workers", "1", ...c.flags, ...extra],
    (out) => out.includes("Registry on http://"),
  );
  return {
    url: `http://127.0.0.1:${port}`,
    printed,
    async stop() {
      child.kill("SIGTERM");
      const { code } = await child.status;
      await drained;
      assertEquals(code, 0, `SIGTERM stops the replica cleanly:\n${await stderr}`);
    },
    async kill() {
      child.kill("SIGKILL");
      await child.status;
      await drained;
      await stderr;
    },
  };
}

async function json(r: Response): Promise<Record<string, unknown>> {
  const text = await r.text();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`Not JSON (${r.status}): ${text}`);
  }
}

/** A plain S3 client on the test bucket, as an operator would use. */
function s3Client(blobsUrl: string): AwsClient {
  return new AwsClient({
    accessKeyId: Deno.env.get("AWS_ACCESS_KEY_ID")!,
    secretAccessKey: Deno.env.get("AWS_SECRET_ACCESS_KEY")!,
    service: "s3",
    region: parseS3Url(blobsUrl).region,
  });
}

/** Keys under the cluster's bucket prefix. */
async function bucketKeys(blobsUrl: string): Promise<string[]> {
  const loc = parseS3Url(blobsUrl);
  const client = s3Client(blobsUrl);
  const q = new URLSearchParams({ "list-type": "2", prefix: `${loc.prefix}/` });
  const xml = await (await client.fetch(`${loc.endpoint}/${loc.bucket}/?${q}`)).text();
  return [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]!.slice(loc.prefix.length + 1))
    .sort();
}

async function sql<T>(db: TestDatabase, fn: (s: postgres.Sql) => Promise<T>): Promise<T> {
  const s = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    return await fn(s);
  } finally {
    await s.end();
  }
}

async function withReplicas(
  c: Cluster,
  n: number,
  fn: (r: Replica[]) => Promise<void>,
): Promise<void> {
  const replicas = await Promise.all(Array.from({ length: n }, () => startReplica(c)));
  try {
    await fn(replicas);
  } finally {
    for (const r of replicas) await r.stop();
  }
}

/** Registers a test run on a fresh cluster (skipped without PostgreSQL and S3). */
function clusterTest(name: string, fn: (c: Cluster) => Promise<void>): void {
  Deno.test({ name, ignore }, () => withCluster(fn));
}

/**
 * Registers a test on three replicas of a fresh cluster, handing it the files
 * of `tinyConvnet(seed)` to publish.
 */
function testOnThreeReplicas(
  name: string,
  seed: number,
  fn: (c: Cluster, replicas: Replica[], files: TestFile[]) => Promise<void>,
): void {
  clusterTest(
    name,
    (c) => withReplicas(c, 3, async (replicas) => fn(c, replicas, await tinyConvnetFiles(seed))),
  );
}

testOnThreeReplicas(
  "a publish, tag move or yank on one replica shows on the others at their next request",
  2,
  async (c, [a, b, d], files) => {
    const reg = (r: Replica) => ({ url: r.url, token: c.token });
    // b reads (and caches) the model before a's second publish.
    assertEquals(
      (await publish(reg(a!), "zoo/shared", "1.0.0", files, { task: "t" })).status,
      201,
    );
    assertEquals((await json(await fetch(`${b!.url}/api/models/zoo/shared`))).latest, "1.0.0");
    assertEquals((await publish(reg(a!), "zoo/shared", "1.1.0", files)).status, 201);
    assertEquals((await json(await fetch(`${b!.url}/api/models/zoo/shared`))).latest, "1.1.0");
    const tag = await fetch(`${b!.url}/api/models/zoo/shared/tags/stable`, {
      method: "PUT",
      headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json" },
      body: JSON.stringify({ version: "1.0.0" }),
    });
    assertEquals(tag.status, 200, await tag.text());
    assertEquals(
      (await json(await fetch(`${d!.url}/api/models/zoo/shared/stable`))).version,
      "1.0.0",
    );
    const yank = await fetch(`${d!.url}/api/models/zoo/shared/1.1.0/yank`, {
      method: "POST",
      headers: { authorization: `Bearer ${c.token}` },
    });
    assertEquals(yank.status, 200, await yank.text());
    assertEquals(
      (await json(await fetch(`${a!.url}/api/models/zoo/shared/latest`))).version,
      "1.0.0",
    );
    assertEquals((await json(await fetch(`${b!.url}/api/models/zoo/shared/1.1.0`))).yanked, true);
  },
);

testOnThreeReplicas(
  "downloads counted on three replicas at once add up exactly",
  3,
  async (c, replicas, files) => {
    const first = replicas[0]!;
    assertEquals(
      (await publish({ url: first.url, token: c.token }, "zoo/counted", "1.0.0", files)).status,
      201,
    );
    const perReplica = 40;
    await Promise.all(replicas.flatMap((r) =>
      Array.from({ length: perReplica }, async () => {
        const res = await fetch(`${r.url}/api/models/zoo/counted/1.0.0/model.json`);
        assertEquals(res.status, 200);
        await res.body?.cancel();
      })
    ));
    const want = perReplica * replicas.length;
    for (const r of replicas) {
      // A version GET counts itself: each replica's answer is one more.
      const doc = await json(await fetch(`${r.url}/api/models/zoo/counted`));
      assertEquals(doc.downloads, want, `as ${r.url} sees it`);
    }
    const [row] = await sql(c.db, (s) => s`SELECT downloads FROM versions`);
    assertEquals(Number(row?.downloads), want);
  },
);

testOnThreeReplicas(
  "32 concurrent publishes of one version spread over three replicas give exactly one 201",
  4,
  async (c, replicas, files) => {
    const statuses = await Promise.all(Array.from({ length: 32 }, async (_, i) => {
      const r = replicas[i % replicas.length]!;
      const res = await publish({ url: r.url, token: c.token }, "zoo/race", "1.0.0", files, {
        description: `attempt ${i}`,
      });
      await res.body?.cancel();
      return res.status;
    }));
    assertEquals(statuses.filter((s) => s === 201).length, 1, `statuses: ${statuses}`);
    assertEquals(statuses.filter((s) => s === 409).length, 31, `statuses: ${statuses}`);
    const [row] = await sql(c.db, (s) => s`SELECT count(*)::int AS n FROM versions`);
    assertEquals(row?.n, 1);
  },
);

clusterTest(
  "killing a replica in the middle of publishes leaves every version whole or absent",
  async (c) => {
    const survivor = await startReplica(c);
    try {
      const files = await modelFiles(tinyConvnet(5));
      // Blobs first (as the SDK does), then kill a replica at a different
      // moment of each version's publish request.
      for (const f of files) {
        const r = await fetch(`${survivor.url}/api/blobs?digest=${await digestOf(f.bytes)}`, {
          method: "POST",
          headers: { authorization: `Bearer ${c.token}` },
          body: f.bytes,
        });
        assertEquals(r.status, 201, await r.text());
      }
      const entries = await Promise.all(
        files.map(async (f) => ({
          path: f.path,
          digest: await digestOf(f.bytes),
          size: f.bytes.length,
        })),
      );
      // How long one publish takes on a fresh replica, to kill the others
      // before, around and after their commit.
      const timed = await startReplica(c);
      const t0 = performance.now();
      const first = await fetch(`${timed.url}/api/models/zoo/crash/0.0.1`, {
        method: "PUT",
        headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json" },
        body: JSON.stringify({ files: entries, card: {} }),
      });
      const took = performance.now() - t0;
      assertEquals(first.status, 201, await first.text());
      await timed.stop();
      let whole = 0;
      const delays = [0, 0.25, 0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2].map((f) => f * took);
      for (const [i, delay] of delays.entries()) {
        const victim = await startReplica(c);
        const req = fetch(`${victim.url}/api/models/zoo/crash/1.0.${i}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json" },
          body: JSON.stringify({ files: entries, card: { description: `try ${i}` } }),
        }).then((r) => r.status, () => "cut");
        await new Promise((r) => setTimeout(r, delay));
        await victim.kill();
        await req;
        const doc = await fetch(`${survivor.url}/api/models/zoo/crash/1.0.${i}`);
        if (doc.status === 404) {
          await doc.body?.cancel();
          continue;
        }
        const v = await json(doc);
        assertEquals((v.files as unknown[]).length, files.length, `1.0.${i} is whole`);
        whole++;
      }
      const rows = await sql(
        c.db,
        (s) =>
          s`SELECT v.version, count(f.path)::int AS n FROM versions v
          LEFT JOIN files f ON f.version_id = v.id GROUP BY v.version`,
      );
      for (const r of rows) assertEquals(r.n, files.length, `${r.version} has all its files`);
      assertEquals(rows.length, whole + 1);
      console.log(
        `A publish took ${took.toFixed(0)} ms; killed at 0-${
          (2 * took).toFixed(0)
        } ms into one, ${whole} of ${delays.length} versions were whole, the rest absent`,
      );
      // Publishing the same versions again through the survivor completes them.
      for (let i = 0; i < delays.length; i++) {
        const res = await fetch(`${survivor.url}/api/models/zoo/crash/1.0.${i}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${c.token}`, "content-type": "application/json" },
          body: JSON.stringify({ files: entries, card: {} }),
        });
        await res.body?.cancel();
        assert(res.status === 201 || res.status === 409, `1.0.${i}: ${res.status}`);
      }
    } finally {
      await survivor.stop();
    }
  },
);

clusterTest(
  "a replica killed during a large upload leaves no object under blobs/ and nothing in the database",
  async (c) => {
    const victim = await startReplica(c);
    const total = 20 * 1024 * 1024;
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(new URL(victim.url).port),
    });
    await conn.write(new TextEncoder().encode(
      `POST /api/blobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.token}\r\n` +
        `Content-Length: ${total}\r\n\r\n`,
    ));
    // Two parts' worth: the multipart upload has begun.
    const chunk = new Uint8Array(1024 * 1024).fill(9);
    for (let i = 0; i < 18; i++) await conn.write(chunk);
    await new Promise((r) => setTimeout(r, 300));
    await victim.kill();
    conn.close();
    assertEquals((await bucketKeys(c.blobsUrl)).filter((k) => k.startsWith("blobs/")), []);
    const [row] = await sql(c.db, (s) => s`SELECT count(*)::int AS n FROM files`);
    assertEquals(row?.n, 0);
  },
);

clusterTest(
  "over PostgreSQL and S3 a model loads with stock tf.loadLayersModel, proxied and redirected",
  async (c) => {
    const proxied = await startReplica(c, ["--no-seed", "--max-blob-bytes", String(1024 ** 2)]);
    const redirected = await startReplica(c, ["--no-seed", "--blob-redirect"]);
    const model = tinyConvnet(6);
    try {
      const files = await modelFiles(model);
      const r = await publish({ url: proxied.url, token: c.token }, "zoo/loads", "1.0.0", files);
      assertEquals(r.status, 201, await r.text());
      const x = tf.randomUniform([2, 8, 8, 1], 0, 1, "float32", 7);
      const want = model.predict(x) as tf.Tensor;
      for (const reg of [proxied, redirected]) {
        const loaded = await tf.loadLayersModel(`${reg.url}/api/models/zoo/loads/1.0.0/model.json`);
        const got = loaded.predict(x) as tf.Tensor;
        assertLess((await tf.max(tf.abs(tf.sub(want, got))).data())[0]!, 1e-6, reg.url);
        tf.dispose(got);
        loaded.dispose();
      }
      tf.dispose([x, want]);

      const shard = files.find((f) => f.path !== "model.json")!;
      const digest = await digestOf(shard.bytes);
      for (const reg of [proxied, redirected]) {
        const url = `${reg.url}/api/blobs/${digest}`;
        const manual = await fetch(url, { redirect: "manual" });
        await manual.body?.cancel();
        assertEquals(manual.headers.get("etag"), `"${digest}"`);
        if (reg === redirected) {
          assertEquals(manual.status, 302);
          assertMatch(manual.headers.get("location") ?? "", /X-Amz-Signature=/);
        } else {
          assertEquals(manual.status, 200);
        }
        const full = new Uint8Array(await (await fetch(url)).arrayBuffer());
        assertEquals(await digestOf(full), digest, "followed, the bytes hash to the digest");
        const part = await fetch(url, { headers: { range: "bytes=4-9" } });
        assertEquals(part.status, 206);
        assertEquals(new Uint8Array(await part.arrayBuffer()), shard.bytes.slice(4, 10));
        const cached = await fetch(url, { headers: { "if-none-match": `"${digest}"` } });
        assertEquals(cached.status, 304);
        await cached.body?.cancel();
      }

      // The SDK follows the redirect and checks what the bucket sends.
      const cacheDir = await Deno.makeTempDir({ prefix: "zoo-cache-" });
      try {
        const pulled = await new ZooClient({ url: redirected.url, cacheDir, progress: false })
          .pull("zoo/loads@1.0.0");
        assertEquals(
          pulled.files.map((f) => f.digest).sort(),
          (await Promise.all(files.map((f) => digestOf(f.bytes)))).sort(),
        );
        const loc = parseS3Url(c.blobsUrl);
        const tampered = await s3Client(c.blobsUrl).fetch(
          `${loc.endpoint}/${loc.bucket}/${loc.prefix}/blobs/sha256/${digest.slice(7)}`,
          { method: "PUT", body: new Uint8Array(shard.bytes.length) },
        );
        assertEquals(tampered.status, 200);
        await tampered.body?.cancel();
        const fresh = await Deno.makeTempDir({ prefix: "zoo-cache-" });
        try {
          await assertRejects(
            () =>
              new ZooClient({ url: redirected.url, cacheDir: fresh, progress: false }).pull(
                "zoo/loads@1.0.0",
              ),
            IntegrityError,
          );
        } finally {
          await Deno.remove(fresh, { recursive: true });
        }
      } finally {
        await Deno.remove(cacheDir, { recursive: true });
      }

      // A wrong digest or an over-limit body leaves nothing in the bucket.
      const before = await bucketKeys(c.blobsUrl);
      const wrong = await fetch(`${proxied.url}/api/blobs?digest=sha256:${"a".repeat(64)}`, {
        method: "POST",
        headers: { authorization: `Bearer ${c.token}` },
        body: new Uint8Array(100).fill(1),
      });
      assertEquals(wrong.status, 400);
      await wrong.body?.cancel();
      const big = await fetch(`${proxied.url}/api/blobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${c.token}` },
        body: new ReadableStream<Uint8Array>({
          start(ctl) {
            // Over the limit, without a Content-Length.
            for (let i = 0; i < 10; i++) ctl.enqueue(new Uint8Array(1024 ** 2).fill(i));
            ctl.close();
          },
        }),
      });
      assertEquals(big.status, 413);
      await big.body?.cancel();
      assertEquals(await bucketKeys(c.blobsUrl), before);
      const [row] = await sql(c.db, (s) => s`SELECT count(*)::int AS n FROM files`);
      assertEquals(row?.n, files.length, "only the published version's files");
    } finally {
      model.dispose();
      await proxied.stop();
      await redirected.stop();
    }
  },
);

clusterTest(
  "two replicas starting together on an empty database seed the zoo once",
  async (c) => {
    const [a, b] = await Promise.all([startReplica(c, []), startReplica(c, [])]);
    try {
      const seeded = [a, b].filter((r) => r.printed().includes("Seeded the empty store"));
      assertEquals(seeded.length, 1, `${a.printed()}\n---\n${b.printed()}`);
      const list = await json(await fetch(`${b.url}/api/models?limit=100`));
      const items = list.items as { name: string; versions: unknown[] }[];
      assert(items.length >= 3, `the zoo is there: ${items.map((m) => m.name)}`);
      for (const m of items) assertEquals(m.versions.length, 1, m.name);
      const [row] = await sql(
        c.db,
        (s) => s`SELECT count(*)::int AS n, count(DISTINCT published_by)::int AS by FROM versions`,
      );
      assertEquals(row?.n, items.length);
    } finally {
      await a.stop();
      await b.stop();
    }
  },
);
