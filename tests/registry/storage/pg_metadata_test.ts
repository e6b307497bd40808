/**
 * What the PostgreSQL metadata store does beyond the conformance suite:
 * migrations under concurrency, a newer schema, URL checks.
 */
import { assertEquals, assertRejects } from "@std/assert";
import postgres from "postgres";
import { MIGRATIONS, openPgMetadataStore } from "../../../registry/storage/pg_metadata.ts";
import { freshDatabase, skipWithout } from "./_servers.ts";

const ignore = skipWithout({ pg: true });

Deno.test({
  name:
    "openPgMetadataStore() migrates an empty database once when eight instances open it at once",
  ignore,
}, async () => {
  const db = await freshDatabase();
  try {
    const stores = await Promise.all(Array.from({ length: 8 }, () => openPgMetadataStore(db.url)));
    await Promise.all(stores.map((s) => s.close()));
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`SELECT version FROM zoo_migrations ORDER BY version`;
      assertEquals(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
    } finally {
      await sql.end();
    }
  } finally {
    await db.drop();
  }
});

Deno.test({
  name: "openPgMetadataStore() refuses a database a newer registry migrated",
  ignore,
}, async () => {
  const db = await freshDatabase();
  try {
    await (await openPgMetadataStore(db.url)).close();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`INSERT INTO zoo_migrations (version, description) VALUES (99, 'from the future')`;
    } finally {
      await sql.end();
    }
    await assertRejects(
      () => openPgMetadataStore(db.url),
      Error,
      "it has schema version 99, this registry knows up to 1; upgrade the registry",
    );
  } finally {
    await db.drop();
  }
});

Deno.test("openPgMetadataStore() refuses a URL that is not postgres:// and says what to use", async () => {
  await assertRejects(
    () => openPgMetadataStore("mysql://db/zoo"),
    TypeError,
    'Invalid database URL "mysql://db/zoo": use postgres://user:password@host:port/database',
  );
});
