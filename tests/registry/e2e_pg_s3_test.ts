/**
 * The end-to-end tests of `e2e_test.ts` (publish and load with stock
 * tf.loadLayersModel, ETag/Range/304, a restart, 16 concurrent publishes, a
 * cut upload, a wrong digest, an over-limit body) again, with every registry
 * on PostgreSQL and S3 (`ZOO_TEST_STORE=pg+s3`); skipped with a message when
 * those servers are not configured.
 */
import { skipWithout } from "./storage/_servers.ts";

if (!skipWithout({ pg: true, s3: true })) {
  Deno.env.set("ZOO_TEST_STORE", "pg+s3");
  await import("./e2e_test.ts");
}
