import { assert, assertEquals } from "@std/assert";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { WalHeader } from "../../../registry/storage/_wal_header.ts";
import { tempDir } from "../../_helpers/temp.ts";

Deno.test("the WAL index header moves with every commit by another connection, and only then", async () => {
  await using dir = await tempDir("zoo-wal-");
  const path = join(dir.path, "db.sqlite");
  const ours = new DatabaseSync(path), theirs = new DatabaseSync(path);
  try {
    ours.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (x)");
    const header = WalHeader.open(path);
    assert(header !== null);
    try {
      assertEquals(header.moved(), false);
      for (let i = 0; i < 20; i++) {
        theirs.exec(`INSERT INTO t VALUES (${i})`);
        assertEquals(header.moved(), true, `commit ${i}`);
        ours.prepare("SELECT count(*) FROM t").get();
        assertEquals(header.moved(), false, `a read after commit ${i}`);
      }
      // A checkpoint that restarts the log moves it too.
      theirs.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      theirs.exec("INSERT INTO t VALUES (99)");
      assertEquals(header.moved(), true);
    } finally {
      header.close();
    }
  } finally {
    theirs.close();
    ours.close();
  }
});

Deno.test("WalHeader.open() gives null without a WAL index, or for a format it does not know", async () => {
  await using dir = await tempDir("zoo-wal-");
  const path = join(dir.path, "db.sqlite");
  const db = new DatabaseSync(path);
  try {
    db.exec("CREATE TABLE t (x)");
    assertEquals(WalHeader.open(path), null);
  } finally {
    db.close();
  }
  await Deno.writeFile(`${path}-shm`, new Uint8Array(136));
  assertEquals(WalHeader.open(path), null);
});
