import { openSqliteFsStore } from "../../../registry/storage/sqlite_fs.ts";
import { storeConformance } from "./conformance.ts";

storeConformance("openSqliteFsStore()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "zoo-store-" });
  return {
    store: await openSqliteFsStore(dir),
    reopen: () => openSqliteFsStore(dir),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});
