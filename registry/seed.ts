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
  files: { path: string; bytes: Uint8Array }[];
  card: Record<string, unknown>;
}

/**
 * Publishes entries into a store under `namespace`, skipping versions that
 * exist, so seeding twice is a no-op.
 *
 * @param store the store
 * @param entries the versions
 * @param namespace where they go
 * @default namespace "zoo"
 * @returns the references published and those skipped
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
): Promise<{ published: string[]; skipped: string[] }> {
  const published: string[] = [];
  const skipped: string[] = [];
  for (const e of entries) {
    const ref = `${namespace}/${e.name}@${e.version}`;
    if (await store.getVersion(namespace, e.name, e.version)) {
      skipped.push(ref);
      continue;
    }
    const files: FileEntry[] = [];
    for (const f of e.files) {
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
    await publishVersion(store, {
      namespace,
      name: e.name,
      version: e.version,
      files,
      card: e.card,
      publishedBy: "seed",
    });
    published.push(ref);
  }
  return { published, skipped };
}
