/**
 * The storage conformance suite on the three other pairs of backends:
 * PostgreSQL with a blob folder, SQLite with S3, and PostgreSQL with S3.
 */
import { openStore, type StoreConfig } from "../../../registry/storage/open.ts";
import { freshBlobsUrl, freshDatabase, skipWithout } from "./_servers.ts";
import { storeConformance } from "./conformance.ts";

/** Registers the conformance suite on one combination of backends. */
function combination(name: string, pg: boolean, s3: boolean): void {
  storeConformance(name, async () => {
    const data = await Deno.makeTempDir({ prefix: "zoo-store-" });
    const db = pg ? await freshDatabase() : undefined;
    const config: StoreConfig = { data };
    if (db) config.databaseUrl = db.url;
    if (s3) config.blobsUrl = freshBlobsUrl();
    return {
      store: await openStore(config),
      reopen: () => openStore(config),
      cleanup: async () => {
        await db?.drop();
        await Deno.remove(data, { recursive: true });
      },
    };
  }, skipWithout({ pg, s3 }));
}

combination("openStore() on PostgreSQL and a blob folder", true, false);
combination("openStore() on SQLite and S3", false, true);
combination("openStore() on PostgreSQL and S3", true, true);
