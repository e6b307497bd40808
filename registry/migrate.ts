/**
 * Copies an embedded registry (SQLite + blob folder) into PostgreSQL and S3:
 *
 * ```sh
 * deno task registry:migrate --from ./.zoo-data \
 *   --to-database-url postgres://zoo@db/zoo --to-blobs "s3://zoo/prod?region=eu-west-1"
 * ```
 *
 * Every blob a version lists is streamed across and hashed on the way, so
 * nothing that does not hash to its digest is written; blobs the target holds
 * already are read back and hashed too. Versions keep their time of
 * publication, downloads, yanks and tags; tokens keep their hashes, so
 * publishers' tokens keep working. Versions and tokens the target has are
 * left as they are, so a second run copies nothing and only verifies.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "@std/cli";
import { printable } from "../core/names.ts";
import { openStore } from "./storage/open.ts";
import { storageLayout } from "./storage/paths.ts";
import type { Store, TokenRecord } from "./storage/store.ts";

const HELP = `Copy an embedded registry into PostgreSQL and S3-compatible storage.

Usage: deno task registry:migrate --from DIR --to-database-url URL --to-blobs URL

Flags:
  --from DIR               the embedded registry's data dir          required
  --to-database-url URL    postgres://user:password@host:port/db      required
  --to-blobs URL           s3://BUCKET/PREFIX?endpoint=URL&region=R   required
                           (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
  -h, --help               this text

Running it again copies nothing and verifies every digest again.`;

/** What a migration did. */
export interface MigrationReport {
  /** Blobs written to the target. */
  blobsCopied: number;
  /** Bytes of those blobs. */
  bytesCopied: number;
  /** Blobs the target held and that hashed to their digest when read back. */
  blobsVerified: number;
  /** Versions recorded in the target. */
  versionsCopied: number;
  /** Versions the target had already. */
  versionsSkipped: number;
  /** Tokens recorded in the target. */
  tokensCopied: number;
}

/**
 * Copies every model, version, tag, download count, blob and token of one
 * store into another, verifying every blob's digest.
 *
 * @param from the source store
 * @param to the target store
 * @param tokens the source's tokens (the store interface does not list them)
 * @param log where progress lines go
 * @returns what was copied and verified
 * @throws {Error} when a blob is missing from the source, or a version in
 *   the target differs from the source's
 */
export async function migrateStore(
  from: Store,
  to: Store,
  tokens: readonly TokenRecord[],
  log: (line: string) => void = () => {},
): Promise<MigrationReport> {
  const report: MigrationReport = {
    blobsCopied: 0,
    bytesCopied: 0,
    blobsVerified: 0,
    versionsCopied: 0,
    versionsSkipped: 0,
    tokensCopied: 0,
  };
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await from.listModels({ limit: 100, ...(cursor ? { cursor } : {}) });
    for (const model of page.items) {
      const { namespace, name } = model;
      for (const { version } of model.versions) {
        const v = await from.getVersion(namespace, name, version);
        if (!v) continue;
        for (const f of v.files) {
          if (seen.has(f.digest)) continue;
          seen.add(f.digest);
          await copyBlob(from, to, f.digest, f.size, report);
        }
        const ref = `${namespace}/${name}@${version}`;
        const existing = await to.getVersion(namespace, name, version);
        if (existing) {
          if (JSON.stringify(existing.files) !== JSON.stringify(v.files)) {
            throw new Error(
              `Version "${
                printable(ref)
              }" differs between the stores: its files are not the same; remove it from the target or leave it out`,
            );
          }
          report.versionsSkipped++;
          continue;
        }
        const { yanked: _y, ...copy } = v;
        await to.publish(copy);
        if (v.yanked) await to.setYanked(namespace, name, version, true, model.updatedAt);
        report.versionsCopied++;
        log(`Copied ${ref}`);
      }
      const target = await to.getModel(namespace, name);
      for (const [tag, version] of Object.entries(model.tags)) {
        if (target?.tags[tag] !== version) {
          await to.setTag(namespace, name, tag, version, model.updatedAt);
        }
      }
      // The last change a model saw may have been a tag move: end on its time.
      const latest = model.tags.latest;
      if (
        latest !== undefined && (await to.getModel(namespace, name))?.updatedAt !== model.updatedAt
      ) {
        await to.setTag(namespace, name, "latest", latest, model.updatedAt);
      }
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  for (const t of tokens) {
    if (await to.findToken(t.hash)) continue;
    await to.addToken(t);
    report.tokensCopied++;
  }
  return report;
}

async function copyBlob(
  from: Store,
  to: Store,
  digest: string,
  size: number,
  report: MigrationReport,
): Promise<void> {
  const there = await to.blobs.stat(digest);
  if (there) {
    const stream = await to.blobs.read(digest);
    const hash = createHash("sha256");
    let n = 0;
    for await (const chunk of stream ?? []) {
      hash.update(chunk);
      n += chunk.length;
    }
    const actual = `sha256:${hash.digest("hex")}`;
    if (actual !== digest || n !== size) {
      throw new Error(
        `Blob "${digest}" in the target holds ${n} bytes hashing to "${actual}": remove it from the bucket and run the migration again`,
      );
    }
    report.blobsVerified++;
    return;
  }
  const source = await from.blobs.read(digest);
  if (!source) {
    throw new Error(
      `Blob "${digest}" is listed by a version but missing from the source: restore it, then run the migration again`,
    );
  }
  const w = await to.blobs.writer();
  try {
    for await (const chunk of source) await w.write(chunk);
    // Hashed as it streamed: a source blob that does not match is refused.
    await w.commit(digest);
  } catch (e) {
    await w.cancel();
    throw e;
  }
  report.blobsCopied++;
  report.bytesCopied += size;
}

/**
 * The tokens of an embedded registry, read from its SQLite file.
 *
 * @param dataDir the data dir
 * @returns its tokens
 */
export function embeddedTokens(dataDir: string): TokenRecord[] {
  const db = new DatabaseSync(storageLayout(dataDir).database, { readOnly: true });
  try {
    return db.prepare("SELECT * FROM tokens ORDER BY created_at, id").all().map((r) => ({
      id: String(r.id),
      hash: String(r.hash),
      scopes: JSON.parse(String(r.scopes)) as string[],
      label: String(r.label),
      createdAt: String(r.created_at),
    }));
  } finally {
    db.close();
  }
}

/**
 * Runs the command line.
 *
 * @param args command-line arguments
 * @returns the report, or null for `--help`
 */
export async function main(args: string[]): Promise<MigrationReport | null> {
  const flags = parseArgs(args, {
    string: ["from", "to-database-url", "to-blobs"],
    boolean: ["help"],
    alias: { h: "help" },
  });
  if (flags.help) {
    console.log(HELP);
    return null;
  }
  const str = (v: unknown) => typeof v === "string" && v !== "" ? v : undefined;
  const fromDir = str(flags.from);
  const databaseUrl = str(flags["to-database-url"]);
  const blobsUrl = str(flags["to-blobs"]);
  if (!fromDir || !databaseUrl || !blobsUrl) {
    throw new TypeError(
      "Cannot migrate: --from DIR, --to-database-url URL and --to-blobs URL are all required (see --help)",
    );
  }
  try {
    await Deno.stat(storageLayout(fromDir).database);
  } catch {
    throw new TypeError(
      `Cannot migrate from "${
        printable(fromDir)
      }": it holds no zoo.sqlite; pass the registry's data dir`,
    );
  }
  const t0 = performance.now();
  const from = await openStore({ data: fromDir });
  try {
    // --data is unused when both URLs are given.
    const to = await openStore({ data: fromDir, databaseUrl, blobsUrl });
    try {
      const r = await migrateStore(from, to, embeddedTokens(fromDir), console.log);
      console.log(
        `Copied ${r.versionsCopied} versions, ${r.blobsCopied} blobs (${r.bytesCopied} bytes) and ${r.tokensCopied} tokens; ${r.versionsSkipped} versions were there already and ${r.blobsVerified} blobs there hashed to their digests; ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );
      return r;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    Deno.exit(1);
  }
}
