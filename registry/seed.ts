/**
 * Seeding a store with checkpoints (the zoo on a registry's first start):
 * each file goes through the blob writer and each version through the same
 * validation as an HTTP publish.
 *
 * @module
 */
import { publishVersion } from "./publish.ts";
import type { FileEntry, Store } from "./storage/store.ts";

/** One version to seed: its files in memory and its card. */
export interface SeedEntry {
  /** Model name within the namespace, e.g. `lenet5`. */
  name: string;
  /** Semver version. */
  version: string;
  /** Its files (`model.json`, the shards, a README) with their bytes. */
  files: { path: string; bytes: Uint8Array }[];
  /** Its model card. */
  card: Record<string, unknown>;
}

/** Options of {@linkcode seedStore} and {@linkcode seedMissing}. */
export interface SeedOptions {
  /**
   * Stops seeding between steps. The entry in progress is not recorded; the
   * blobs it stored already stay, and the next seed reuses them.
   */
  signal?: AbortSignal;
  /** Called after each version is recorded, with its reference. */
  onPublished?: (reference: string) => void;
}

/** What a seed did. */
export interface SeedResult {
  /** References published now. */
  published: string[];
  /** References that existed. */
  skipped: string[];
  /** True when the signal stopped it before every entry was there. */
  stopped: boolean;
}

/**
 * Publishes entries into a store under `namespace`, skipping versions that
 * exist, so seeding twice is a no-op.
 *
 * @param store the store
 * @param entries the versions
 * @param namespace where they go
 * @default namespace "zoo"
 * @param options a signal that stops it between steps, a progress callback
 * @returns the references published and those skipped, and whether it was stopped
 * @throws {HttpProblem} when an entry fails validation
 *
 * @example Seed an empty store with the zoo
 * ```ts ignore
 * import { zooEntries } from "../zoo/mod.ts";
 * await seedStore(store, await zooEntries());
 * ```
 */
export async function seedStore(
  store: Store,
  entries: readonly SeedEntry[],
  namespace = "zoo",
  options: SeedOptions = {},
): Promise<SeedResult> {
  return await seedMissing(
    store,
    entries,
    (e) => Promise.resolve(e as SeedEntry),
    namespace,
    options,
  );
}

/**
 * Adds the versions of `wanted` that the store lacks, loading each entry only
 * when it is missing, one at a time, so that a start after an interrupted
 * seed completes it at the cost of what is missing.
 *
 * @param store the store
 * @param wanted the versions that should be there
 * @param load builds one missing entry's files and card
 * @param namespace where they go
 * @param options a signal that stops it between steps, a progress callback
 * @returns the references published and those skipped, and whether it was stopped
 * @throws {HttpProblem} when an entry fails validation
 *
 * @example Complete the zoo, building only what is missing
 * ```ts ignore
 * import { IMPORTED_ENTRIES, TRAINED_ENTRIES, ZOO_VERSION, zooEntries } from "../zoo/mod.ts";
 * const wanted = [...TRAINED_ENTRIES, ...IMPORTED_ENTRIES].map((name) => ({ name, version: ZOO_VERSION }));
 * await seedMissing(store, wanted, async ({ name }) => (await zooEntries({ only: [name] }))[0]!);
 * ```
 */
export async function seedMissing<W extends { name: string; version: string }>(
  store: Store,
  wanted: readonly W[],
  load: (entry: W) => Promise<SeedEntry>,
  namespace = "zoo",
  options: SeedOptions = {},
): Promise<SeedResult> {
  const { signal } = options;
  const published: string[] = [];
  const skipped: string[] = [];
  for (const w of wanted) {
    const ref = `${namespace}/${w.name}@${w.version}`;
    if (await store.getVersion(namespace, w.name, w.version)) {
      skipped.push(ref);
      continue;
    }
    if (signal?.aborted) return { published, skipped, stopped: true };
    const e = await load(w);
    const files: FileEntry[] = [];
    for (const f of e.files) {
      if (signal?.aborted) return { published, skipped, stopped: true };
      const writer = await store.blobs.writer();
      try {
        await writer.write(f.bytes);
        const info = await writer.commit();
        files.push({ path: f.path, digest: info.digest, size: info.size });
      } catch (err) {
        await writer.cancel();
        throw err;
      }
    }
    try {
      await publishVersion(store, {
        namespace,
        name: e.name,
        version: e.version,
        files,
        card: e.card,
        publishedBy: "seed",
      }, signal);
    } catch (err) {
      if (signal?.aborted && err === signal.reason) return { published, skipped, stopped: true };
      throw err;
    }
    published.push(ref);
    options.onPublished?.(ref);
  }
  return { published, skipped, stopped: false };
}
