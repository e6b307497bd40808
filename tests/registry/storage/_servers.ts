/**
 * The PostgreSQL server and S3-compatible bucket the storage tests run
 * against, from `ZOO_TEST_DATABASE_URL` (an administrator's URL: each test
 * gets a database of its own) and `ZOO_TEST_BLOBS_URL` (each test gets a
 * prefix of its own), with `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
 * `.ci/run` starts both and sets them; without them, the tests that need
 * them are skipped and say so.
 *
 * @module
 */
import postgres from "postgres";

/** The administrator URL of the test PostgreSQL server, when configured. */
export const TEST_DATABASE_URL: string | undefined = Deno.env.get("ZOO_TEST_DATABASE_URL") ||
  undefined;
/** The S3 URL of the test bucket, when configured. */
export const TEST_BLOBS_URL: string | undefined = Deno.env.get("ZOO_TEST_BLOBS_URL") || undefined;

const warned = new Set<string>();

/**
 * Whether tests needing these servers must be skipped; prints why, once per
 * missing server.
 *
 * @param needs which servers the tests need
 * @returns true when one is not configured
 */
export function skipWithout(needs: { pg?: boolean; s3?: boolean }): boolean {
  const missing: string[] = [];
  if (needs.pg && TEST_DATABASE_URL === undefined) missing.push("ZOO_TEST_DATABASE_URL");
  if (needs.s3 && TEST_BLOBS_URL === undefined) missing.push("ZOO_TEST_BLOBS_URL");
  for (const m of missing) {
    if (warned.has(m)) continue;
    warned.add(m);
    console.warn(
      `Skipping the tests that need ${m}: it is not set. bash .ci/run starts a PostgreSQL cluster and an S3 server and sets it; or: source .ci/services.sh`,
    );
  }
  return missing.length > 0;
}

/** A database of its own for one test. */
export interface TestDatabase {
  /** Its URL. */
  url: string;
  /** Drops it, closing any connection left. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database on the test server.
 *
 * @returns its URL and a way to drop it
 */
export async function freshDatabase(): Promise<TestDatabase> {
  if (TEST_DATABASE_URL === undefined) throw new TypeError("ZOO_TEST_DATABASE_URL is not set");
  const name = `zoo_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      const a = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * A blob store URL with a prefix no other test uses.
 *
 * @returns `s3://BUCKET/<base prefix>/<random>?...`
 */
export function freshBlobsUrl(): string {
  if (TEST_BLOBS_URL === undefined) throw new TypeError("ZOO_TEST_BLOBS_URL is not set");
  const u = new URL(TEST_BLOBS_URL);
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/${crypto.randomUUID()}`;
  return u.href;
}
