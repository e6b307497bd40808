/**
 * The blob route's own Range and If-None-Match parsing (routes/blobs.ts),
 * kept instead of a library: every form RFC 9110 allows for one range, the
 * ones the registry answers with the whole blob, and entity-tag matching.
 */
import { assertEquals } from "@std/assert";
import { etagMatches, parseRange } from "../../registry/routes/blobs.ts";

Deno.test("parseRange() reads a single bytes range of each form against the blob's size", () => {
  assertEquals(parseRange("bytes=0-99", 1000), { start: 0, end: 99 });
  assertEquals(parseRange("bytes=100-", 1000), { start: 100, end: 999 });
  assertEquals(parseRange("bytes=-10", 1000), { start: 990, end: 999 });
  assertEquals(parseRange("bytes=-5000", 1000), { start: 0, end: 999 }, "a suffix over the size");
  assertEquals(
    parseRange("bytes=900-5000", 1000),
    { start: 900, end: 999 },
    "an end past the size",
  );
  assertEquals(parseRange(" bytes=1-1 ", 1000), { start: 1, end: 1 });
});

Deno.test("parseRange() says unsatisfiable for a range that starts past the end or an empty suffix", () => {
  assertEquals(parseRange("bytes=1000-", 1000), "unsatisfiable");
  assertEquals(parseRange("bytes=5000-6000", 1000), "unsatisfiable");
  assertEquals(parseRange("bytes=-0", 1000), "unsatisfiable");
  assertEquals(parseRange("bytes=0-", 0), "unsatisfiable");
});

Deno.test("parseRange() ignores what it cannot serve as one range, so the whole blob is sent", () => {
  for (
    const header of ["bytes=0-1,5-6", "bytes=5-1", "bytes=-", "items=0-1", "bytes=a-b", "0-1", ""]
  ) {
    assertEquals(parseRange(header, 1000), null, header);
  }
});

Deno.test("etagMatches() compares entity tags weakly, in lists and with a wildcard", () => {
  const etag = `"sha256:${"a".repeat(64)}"`;
  assertEquals(etagMatches(etag, etag), true);
  assertEquals(etagMatches(`W/${etag}`, etag), true);
  assertEquals(etagMatches(`"x", ${etag}`, etag), true);
  assertEquals(etagMatches("*", etag), true);
  assertEquals(etagMatches(`"sha256:${"b".repeat(64)}"`, etag), false);
  assertEquals(etagMatches(etag.slice(1, -1), etag), false, "an unquoted tag");
});
