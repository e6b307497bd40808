/**
 * The registry's OpenAPI document as a client developer reads it, from a
 * registry on a real port: every success body has a schema that
 * openapi-typescript turns into a type (none is `unknown`), the checked-in
 * `core/api_types.ts` is what `deno task gen:api` writes from it, Redocly's
 * rules pass, and `/docs` shows it with scripts from the registry alone.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import openapiTS, { astToString } from "openapi-typescript";
import { API_TYPES_FILE, apiTypes, lintDocument } from "../../registry/api_document.ts";
import { startRegistry } from "./_helpers.ts";

type Operation = {
  operationId?: string;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};

async function liveDocument(): Promise<Record<string, unknown>> {
  const reg = await startRegistry();
  try {
    const res = await fetch(`${reg.url}/openapi.json`);
    assertEquals(res.status, 200);
    return await res.json();
  } finally {
    await reg.close();
  }
}

Deno.test("every success body of the live document has a schema and a type that is not unknown", async () => {
  const doc = await liveDocument();
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  let bodies = 0;
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (!status.startsWith("2") || method === "head") continue;
        const content = Object.entries(response.content ?? {});
        assert(content.length > 0, `${method} ${path} ${status} has no content`);
        for (const [type, media] of content) {
          assert(media.schema !== undefined, `${method} ${path} ${status} ${type} has no schema`);
          bodies++;
        }
      }
    }
  }
  assert(bodies >= 12, `only ${bodies} success bodies`);
  const types = astToString(await openapiTS(doc as unknown as Parameters<typeof openapiTS>[0]));
  // openapi-typescript writes `"<media type>": unknown;` for a body without a schema.
  const untyped = types.match(/"[a-z]+\/[a-z0-9.+-]+": unknown;/g) ?? [];
  assertEquals(untyped, [], "bodies typed as unknown");
  // The bodies clients read most are the wire types, by name.
  for (const name of ["ModelList", "ModelDocument", "VersionDocument", "BlobInfo", "Problem"]) {
    assertMatch(types, new RegExp(`\\b${name}: \\{`), `${name} is a named schema`);
  }
});

Deno.test("the live document declares limit and sort typed, the blob route's statuses and public reads", async () => {
  const doc = await liveDocument();
  const paths = doc.paths as Record<string, Record<string, Operation & Record<string, unknown>>>;
  const list = paths["/api/models"]!.get!;
  const params = list.parameters as { name: string; schema: Record<string, unknown> }[];
  const limit = params.find((p) => p.name === "limit")!.schema;
  assertEquals([limit.type, limit.minimum, limit.maximum, limit.default], ["integer", 1, 100, 20]);
  assertEquals(params.find((p) => p.name === "sort")!.schema.enum, ["downloads", "updated"]);
  assertEquals(
    Object.keys(paths["/api/blobs/{digest}"]!.get!.responses).sort(),
    ["200", "206", "302", "304", "400", "401", "403", "404", "416", "500"],
  );
  assertEquals(list.security, []);
  assertEquals(paths["/api/models/{ns}/{name}/{ref}"]!.put!.security, [{ bearer: [] }]);
  assert((doc.servers as unknown[]).length > 0);
  // One template per position: no two paths differ only in a parameter's name.
  const shapes = Object.keys(paths).map((p) => p.replace(/\{[^}]+\}/g, "{}"));
  assertEquals(new Set(shapes).size, shapes.length);
});

Deno.test("a private registry's document says its reads need a token", async () => {
  const reg = await startRegistry({ auth: { private: true } });
  try {
    const doc = await (await fetch(`${reg.url}/openapi.json`)).json();
    assertEquals(doc.paths["/api/models"].get.security, [{ bearer: [] }]);
    assertEquals(doc.paths["/healthz"].get.security, [{ bearer: [] }]);
  } finally {
    await reg.close();
  }
});

Deno.test("core/api_types.ts is what deno task gen:api writes from the live document", async () => {
  const checkedIn = await Deno.readTextFile(API_TYPES_FILE);
  assertEquals(checkedIn, await apiTypes(await liveDocument()), "run deno task gen:api");
});

Deno.test("Redocly's recommended rules pass on the live document", async () => {
  const { code, output } = await lintDocument(await liveDocument());
  assertEquals(code, 0, output);
  assertMatch(output, /valid/);
});

Deno.test("/docs answers with a reference page whose scripts all come from the registry", async () => {
  const reg = await startRegistry();
  try {
    const res = await fetch(`${reg.url}/docs`);
    assertEquals(res.status, 200);
    assertMatch(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    const csp = res.headers.get("content-security-policy") ?? "";
    assertMatch(csp, /script-src 'self' 'nonce-[0-9a-f]+'/);
    assert(!/https?:/.test(csp), `the policy allows no other origin: ${csp}`);
    const srcs = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
    assertEquals(srcs, ["/docs/scalar.js"]);
    assert(!/https?:\/\//.test(html), "no URL of another origin in the page");
    const nonce = /'nonce-([0-9a-f]+)'/.exec(csp)![1];
    for (const tag of html.matchAll(/<script\b[^>]*>/g)) {
      assert(tag[0].includes(`nonce="${nonce}"`), `${tag[0]} carries the nonce`);
    }
    assertMatch(html, /"url": "\/openapi.json"/);
    const script = await fetch(`${reg.url}/docs/scalar.js`);
    assertEquals(script.status, 200);
    assertMatch(script.headers.get("content-type") ?? "", /javascript/);
    assert((await script.arrayBuffer()).byteLength > 100_000, "the standalone build");
  } finally {
    await reg.close();
  }
});

const CHROMIUM = "/usr/bin/chromium";

Deno.test({
  name: "a browser renders /docs from the registry alone, with no policy violation",
  ignore: await Deno.stat(CHROMIUM).then(() => false, () => true),
  async fn() {
    const { chromium } = await import("playwright-core");
    const reg = await startRegistry();
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      const elsewhere: string[] = [];
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("console", (m) => {
        if (/Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text());
      });
      page.on("request", (r) => {
        if (!r.url().startsWith(reg.url) && !r.url().startsWith("data:")) elsewhere.push(r.url());
      });
      await page.goto(`${reg.url}/docs`);
      // The reference lists the operations of /openapi.json by their summaries.
      await page.getByText("List and search models").first().waitFor({ timeout: 30_000 });
      assertEquals(elsewhere, [], "requests to other origins");
      assertEquals(problems, [], "page errors or policy violations");
    } finally {
      await browser.close();
      await reg.close();
    }
  },
});
