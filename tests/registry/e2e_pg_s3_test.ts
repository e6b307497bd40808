/**
 * The end-to-end tests of `e2e_test.ts` (publish and load with stock
 * tf.loadLayersModel, ETag/Range/304, a restart, 16 concurrent publishes, a
 * cut upload, a wrong digest, an over-limit body) again, with every registry
 * on PostgreSQL and S3 (`useRemoteStores()`); skipped with a message when
 * those servers are not configured.
 */
import { skipWithout } from "./storage/_servers.ts";
import { useRemoteStores } from "../_helpers/registry.ts";

if (!skipWithout({ pg: true, s3: true })) {
  useRemoteStores();
  await import("./e2e_test.ts");
}
