import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import type { createRegistryApp, RegistryOptions } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { renderMarkdown, safeHref } from "../../registry/pages/_markdown.ts";
import type { Store } from "../../registry/storage/store.ts";
import { runDeno } from "../_helpers/cli.ts";
import { inProcessApp } from "../_helpers/registry.ts";
import {
  type PageTestFile,
  publishVia,
  readmeFile as readme,
  savedFiles as modelFiles,
  smallConvnet as tinyConvnet,
} from "./_pages_fixtures.ts";

await tf.setBackend("cpu");

interface Ctx {
  app: ReturnType<typeof createRegistryApp>;
  store: Store;
  token: string;
  /** Uploads files and publishes them through the API; asserts a 201. */
  publish(name: string, version: string, files: PageTestFile[], card?: unknown): Promise<void>;
  /** GETs a page and returns its HTML, asserting the status. */
  page(path: string, status?: number, init?: RequestInit): Promise<string>;
}

async function withApp(fn: (ctx: Ctx) => Promise<void>, opts: Omit<RegistryOptions, "store"> = {}) {
  await using registry = await inProcessApp("zoo-pages-", opts);
  const { app, store, token } = registry;
  const publish: Ctx["publish"] = (name, version, files, card = {}) =>
    publishVia(app, token, name, version, files, card);
  const page: Ctx["page"] = async (path, status = 200, init = {}) => {
    const r = await app.request(path, init);
    const text = await r.text();
    assertEquals(r.status, status, `${path}: ${text.slice(0, 300)}`);
    if (r.ok || r.status === 404) {
      assertMatch(r.headers.get("content-type") ?? "", /^text\/html/);
    }
    return text;
  };
  await fn({ app, store, token, publish, page });
}

const LENET_CARD = {
  task: "image-classification",
  description: "A tiny convnet for 8x8 digits",
  labels: ["zero", "one", "two"],
  dataset: "digits-8x8",
  datasetSize: 1797,
  license: "MIT",
  source: "https://example.com/tiny",
  preprocessing: { height: 16, width: 16, channels: 1, range: [0, 1] },
  metrics: [{ name: "accuracy", value: 0.97, dataset: "digits-8x8 test" }],
};

Deno.test("the index lists published models with their task, latest version and links", async () => {
  await withApp(async ({ publish, page }) => {
    const files = await modelFiles(tinyConvnet(1));
    await publish("tiny", "1.0.0", files, LENET_CARD);
    await publish("tiny", "1.1.0", files, LENET_CARD);
    await publish("other", "0.1.0", files, { task: "regression", description: "Another one" });
    const html = await page("/");
    assertStringIncludes(html, "<!DOCTYPE html>");
    assertStringIncludes(html, 'href="/zoo/tiny"');
    assertStringIncludes(html, 'href="/zoo/other"');
    assertStringIncludes(html, 'href="/zoo/tiny/1.1.0"');
    assertStringIncludes(html, "A tiny convnet for 8x8 digits");
    assertStringIncludes(html, "zero, one, two");
    assertStringIncludes(html, '<option value="image-classification"');
    assertStringIncludes(html, '<option value="regression"');
    assert(!html.includes('rel="next"'), "one page has no Next link");

    const found = await page("/?search=another&sort=downloads");
    assertStringIncludes(found, 'href="/zoo/other"');
    assert(!found.includes('href="/zoo/tiny"'));
    assertMatch(found, /<option value="downloads" selected/);
    assertStringIncludes(found, 'value="another"');

    const byTask = await page("/?task=regression");
    assertStringIncludes(byTask, 'href="/zoo/other"');
    assert(!byTask.includes('href="/zoo/tiny"'));
    assertMatch(byTask, /<option value="regression" selected/);

    const none = await page("/?search=nothing-like-this");
    assertStringIncludes(none, "No model matches this search");
  });
});

Deno.test("the index pages with the store's cursor and survives a stale one", async () => {
  await withApp(async ({ store, page }) => {
    for (let i = 0; i < 23; i++) {
      await store.publish({
        namespace: "zoo",
        name: `m${String(i).padStart(2, "0")}`,
        version: "1.0.0",
        files: [],
        card: { task: "t", description: `model ${i}` },
        architecture: {},
      });
    }
    const first = await page("/?sort=updated");
    const next = /<a href="([^"]+)" rel="next">Next<\/a>/.exec(first);
    assert(next?.[1], "first page links to the next");
    const href = next[1].replaceAll("&amp;", "&");
    assertStringIncludes(href, "sort=updated");
    const second = await page(href);
    const rows = (html: string) =>
      [...html.matchAll(/<a href="\/zoo\/(m\d+)"><strong>/g)].map((m) => m[1]);
    assertEquals(rows(first).length, 20);
    assertEquals(rows(second).length, 3);
    assertEquals(new Set([...rows(first), ...rows(second)]).size, 23);
    assert(!second.includes('rel="next"'));
    assertStringIncludes(second, "First page");

    const stale = await page("/?cursor=not-a-cursor");
    assertStringIncludes(stale, "no longer valid");
    assertEquals(rows(stale).length, 20);
  });
});

Deno.test("the model page shows the card, facts, versions, tags, architecture and snippets", async () => {
  await withApp(async ({ app, token, publish, page, store }) => {
    const files = await modelFiles(tinyConvnet(1));
    await publish("tiny", "1.0.0", files, LENET_CARD);
    await publish("tiny", "1.1.0", [...files, readme("# Tiny\n\nTrained on **digits**.\n")], {
      ...LENET_CARD,
      parent: "zoo/tiny@1.0.0",
    });
    const r = await app.request("/api/models/zoo/tiny/tags/stable", {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ version: "1.0.0" }),
    });
    assertEquals(r.status, 200);
    const before = (await store.getModel("zoo", "tiny"))!.downloads;

    const html = await page("/zoo/tiny");
    assertStringIncludes(html, "<h1>Tiny</h1>");
    assertStringIncludes(html, "<strong>digits</strong>");
    assertStringIncludes(html, "image-classification");
    assertStringIncludes(html, "digits-8x8");
    assertStringIncludes(html, "1,797 examples");
    assertStringIncludes(html, "MIT");
    assertStringIncludes(html, 'href="https://example.com/tiny"');
    assertStringIncludes(html, "accuracy 0.97 (digits-8x8 test)");
    assert(!html.includes("resolves to"), "the model page names no tag");
    assertStringIncludes(html, 'href="/zoo/tiny/1.0.0"><code>zoo/tiny@1.0.0</code>');
    assertStringIncludes(html, "<strong>1.1.0</strong>");
    assertMatch(html, /<span class="badge ok">stable<\/span> →\s*<a href="\/zoo\/tiny\/1.0.0">/);
    // The architecture the server computed at publish time, as a table of layers.
    assertStringIncludes(html, 'id="layer-table"');
    for (const cls of ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]) {
      assertStringIncludes(html, `<td>${cls}</td>`);
    }
    assertStringIncludes(html, "(None, 14, 14, 4)");
    assertStringIncludes(html, "(None, 7, 7, 4)");
    assertStringIncludes(html, "Cut points");
    assertStringIncludes(html, "cut point</span>");
    // Snippets use the origin the request came to.
    assertStringIncludes(html, "new ZooClient({ url: &quot;http://localhost&quot; })");
    assertStringIncludes(html, "loadModel(&quot;zoo/tiny@1.1.0&quot;)");
    assertStringIncludes(
      html,
      "tf.loadLayersModel(&quot;http://localhost/api/models/zoo/tiny/1.1.0/model.json&quot;)",
    );
    assertEquals((await store.getModel("zoo", "tiny"))!.downloads, before, "pages count nothing");

    const viaOtherHost = await page("http://zoo.example:8080/zoo/tiny");
    assertStringIncludes(
      viaOtherHost,
      "http://zoo.example:8080/api/models/zoo/tiny/1.1.0/model.json",
    );
  });
});

Deno.test("version pages resolve versions and tags; yanked versions are marked", async () => {
  await withApp(async ({ app, token, publish, page }) => {
    const files = await modelFiles(tinyConvnet(2));
    await publish("tiny", "1.0.0", files, { ...LENET_CARD, description: "first" });
    await publish("tiny", "2.0.0", files, { ...LENET_CARD, description: "second" });
    const r = await app.request("/api/models/zoo/tiny/2.0.0/yank", {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assertEquals(r.status, 200);

    const latest = await page("/zoo/tiny");
    assertStringIncludes(latest, "<strong>1.0.0</strong>");
    assertMatch(latest, /2\.0\.0<\/a>\s*<span class="badge warn">yanked<\/span>/);
    assertStringIncludes(latest, '<section id="card" class="card"><p>first</p></section>');

    const exact = await page("/zoo/tiny/2.0.0");
    assertStringIncludes(exact, "This version is yanked");
    assertStringIncludes(exact, "second");

    const tagged = await page("/zoo/tiny/latest");
    assertMatch(tagged, /<code>latest<\/code> resolves to <code>1\.0\.0<\/code>/);

    const missing = await page("/zoo/tiny/3.0.0", 404);
    assertStringIncludes(
      missing,
      "Version &quot;3.0.0&quot; of &quot;zoo/tiny&quot; does not exist",
    );
    assertStringIncludes(missing, 'href="/zoo/tiny"');
    const noTag = await page("/zoo/tiny/nightly", 404);
    assertStringIncludes(noTag, "Tag &quot;nightly&quot;");
  });
});

Deno.test("an unknown model is a 404 page that links to a search", async () => {
  await withApp(async ({ page }) => {
    const html = await page("/zoo/lenet6", 404);
    assertStringIncludes(html, "Not found: zoo/lenet6");
    assertStringIncludes(html, 'href="/?search=lenet6"');
  });
});

Deno.test("/api paths and invalid names are left to the API's problem documents", async () => {
  await withApp(async ({ app }) => {
    for (
      const path of [
        "/api/nothing",
        "/api/nothing/here",
        "/Zoo/Tiny",
        "/zoo/tiny/Not_A_Ref",
        "/zoo/.x",
        "/zoo/%3Cb%3E",
      ]
    ) {
      const r = await app.request(path);
      assertEquals(r.status, 404, path);
      assertEquals(r.headers.get("content-type"), "application/problem+json", path);
      await r.body?.cancel();
    }
  });
});

Deno.test("model cards cannot inject HTML or script into pages", async () => {
  await withApp(async ({ publish, page, app }) => {
    const files = await modelFiles(tinyConvnet(3));
    const evil = [
      "# Card",
      "<script>alert('readme')</script>",
      'Inline <img src=x onerror="alert(1)"> html',
      "[click](javascript:alert(1)) [tab](java\tscript:alert(1)) <javascript:alert(2)>",
      '<a href="javascript:alert(3)">raw link</a>',
    ].join("\n\n");
    await publish("evil", "1.0.0", [...files, readme(evil)], {
      task: "<b>task</b>",
      description: '"><script>alert("desc")</script>',
      labels: ["<i>label</i>"],
      license: "<u>MIT</u>",
      source: "javascript:alert(4)",
      parent: "<script>",
    });
    for (const path of ["/zoo/evil", "/zoo/evil/1.0.0", "/", "/?search=%3Cscript%3E"]) {
      const r = await app.request(path);
      assertEquals(r.status, 200, path);
      const csp = r.headers.get("content-security-policy") ?? "";
      assertStringIncludes(csp, "default-src 'none'");
      assertStringIncludes(csp, "script-src 'self' 'wasm-unsafe-eval';");
      assert(!/script-src[^;]*(unsafe-inline|https?:|\*)/.test(csp), "only own scripts run");
      const html = await r.text();
      assert(!/<script/i.test(html), `${path} has no script element`);
      assert(!/<(b|i|u|img)>|<img /i.test(html), `${path} has no element from a card`);
      assert(!/href="\s*javascript:/i.test(html), `${path} has no javascript: link`);
      assert(!/\sonerror=/i.test(html.replaceAll("onerror=&quot;", "")), `${path} has no handler`);
    }
    const html = await page("/zoo/evil");
    assertStringIncludes(html, "&lt;script&gt;alert(&#39;readme&#39;)&lt;/script&gt;");
    assertStringIncludes(html, "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    assertStringIncludes(html, "&lt;b&gt;task&lt;/b&gt;");
    assertStringIncludes(html, "&lt;i&gt;label&lt;/i&gt;");
    assertStringIncludes(html, "<p>click ");
  });
});

Deno.test("renderMarkdown() escapes raw HTML and drops unsafe link destinations", () => {
  assertEquals(
    renderMarkdown("# LeNet\n<script>alert(1)</script>"),
    "<h1>LeNet</h1>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n",
  );
  assertEquals(safeHref("javascript:alert(1)"), null);
  assertEquals(safeHref(" JaVa\nScRiPt:alert(1)"), null);
  assertEquals(safeHref("data:text/html,<script>"), null);
  assertEquals(safeHref("vbscript:x"), null);
  assertEquals(safeHref("&#106;avascript:alert(1)"), null);
  assertEquals(safeHref("https://example.com/a?b=1"), "https://example.com/a?b=1");
  assertEquals(safeHref("mailto:a@b.c"), "mailto:a@b.c");
  assertEquals(safeHref("docs/usage.md#top"), "docs/usage.md#top");
  assertEquals(
    renderMarkdown('[a](https://x.test/?q=1&r=2 "t")'),
    '<p><a href="https://x.test/?q=1&amp;r=2" title="t" rel="nofollow ugc noopener">a</a></p>\n',
  );
  assertEquals(renderMarkdown("![x](javascript:alert(1))"), "<p>x</p>\n");
});

Deno.test("a private registry's pages need a read token", async () => {
  await withApp(async ({ store, page }) => {
    const anonymous = await page("/", 401);
    assertStringIncludes(anonymous, "private");
    await page("/zoo/tiny", 401);
    const { token } = await createToken(store, ["read"], "reader");
    const html = await page("/", 200, { headers: { authorization: `Bearer ${token}` } });
    assertStringIncludes(html, "No model has been published yet");
    await page("/zoo/tiny", 404, { headers: { authorization: `Bearer ${token}` } });
  }, { auth: { private: true } });
});

Deno.test("the card's own architecture section is left out: the page shows one table", async () => {
  await withApp(async ({ publish, page }) => {
    const files = await modelFiles(tinyConvnet(4));
    const card = [
      "# Tiny",
      "",
      "Intro.",
      "",
      "## Architecture",
      "",
      "| layer | class |",
      "| --- | --- |",
      "| conv1 | Conv2D |",
      "",
      "### Details",
      "",
      "Nested under Architecture.",
      "",
      "## Rebuild",
      "",
      "Run the recipe.",
    ].join("\n");
    await publish("tiny", "1.0.0", [...files, readme(card)], LENET_CARD);
    const html = await page("/zoo/tiny");
    assertEquals(html.match(/<h2[^>]*>Architecture<\/h2>/g)?.length, 1, "one Architecture heading");
    assertEquals(html.match(/<table/g)?.length, 1, "only the layer table");
    assertStringIncludes(html, '<dl class="arch-facts">');
    assert(!html.includes("Nested under Architecture."), "subsections go with their section");
    assertStringIncludes(html, "<h2>Rebuild</h2>");
    assertStringIncludes(html, "Run the recipe.");
    assertStringIncludes(html, "Intro.");
  });
});

Deno.test("a version's page lists its files with digests and its card; the model page does not", async () => {
  await withApp(async ({ app, publish, page }) => {
    const files = await modelFiles(tinyConvnet(5));
    await publish("tiny", "1.0.0", [...files, readme("# Tiny one\n")], LENET_CARD);
    await publish("tiny", "1.1.0", [...files, readme("# Tiny two\n")], {
      ...LENET_CARD,
      description: "the second",
    });
    const doc = await (await app.request("/api/models/zoo/tiny/1.0.0")).json() as {
      files: { path: string; digest: string }[];
    };
    const modelJson = doc.files.find((f) => f.path === "model.json")!;
    const version = await page("/zoo/tiny/1.0.0");
    const model = await page("/zoo/tiny");
    assertStringIncludes(version, 'id="file-table"');
    assertStringIncludes(version, `<code class="digest">${modelJson.digest}</code>`);
    assertStringIncludes(version, 'id="card-json"');
    assertStringIncludes(version, "&quot;dataset&quot;: &quot;digits-8x8&quot;");
    assertStringIncludes(version, "<h1>Tiny one</h1>");
    assert(!version.includes('id="fine-tunes"'), "fine-tunes belong to the model page");
    assert(!model.includes('id="file-table"'), "digests belong to the version page");
    assertStringIncludes(model, "<h1>Tiny two</h1>");
    assertStringIncludes(model, 'id="fine-tunes"');
    assertStringIncludes(model, 'href="/zoo/tiny/1.1.0">1.1.0</a>');
  });
});

Deno.test("name@version references link to model and dataset pages, not to mailto:", async () => {
  await withApp(async ({ publish, page }) => {
    const files = await modelFiles(tinyConvnet(6));
    await publish("base", "1.0.0", files, LENET_CARD);
    const text = "Fine-tuned from zoo/base@1.0.0 (also base@1.0.0) on mnist@1.1.0, " +
      "not from ghost@2.0.0. Write to someone@example.org.";
    await publish("child", "1.0.0", [...files, readme(text)], {
      ...LENET_CARD,
      dataset: { name: "mnist", package: "npm:mnist@1.1.0" },
    });
    const html = await page("/zoo/child");
    assertStringIncludes(html, '<a href="/zoo/base/1.0.0" class="ref">zoo/base@1.0.0</a>');
    assertStringIncludes(html, '<a href="/zoo/base/1.0.0" class="ref">base@1.0.0</a>');
    assertStringIncludes(
      html,
      '<a href="https://www.npmjs.com/package/mnist/v/1.1.0" class="ref" rel="nofollow ugc noopener">mnist@1.1.0</a>',
    );
    assertStringIncludes(html, "not from ghost@2.0.0.");
    assert(!/mailto:[^"]*@\d/.test(html), "no reference became a mailto: link");
    assertStringIncludes(html, 'href="mailto:someone@example.org"');
  });
});

Deno.test("a base model's page lists the models fine-tuned from it", async () => {
  await withApp(async ({ publish, page }) => {
    const files = await modelFiles(tinyConvnet(7));
    await publish("base", "1.0.0", files, LENET_CARD);
    await publish("base", "1.1.0", files, LENET_CARD);
    await publish("fashion", "1.0.0", files, {
      ...LENET_CARD,
      description: "Base on clothes",
      parent: "zoo/base@1.0.0",
    });
    await publish("letters", "0.1.0", files, { ...LENET_CARD, parent: "zoo/base@1.1.0" });
    await publish("unrelated", "1.0.0", files, { ...LENET_CARD, parent: "zoo/basement@1.0.0" });
    const html = await page("/zoo/base");
    const list = html.slice(
      html.indexOf('id="fine-tunes"'),
      html.indexOf("</ul>", html.indexOf('id="fine-tunes"')),
    );
    assertStringIncludes(list, '<a href="/zoo/fashion"><code>zoo/fashion@1.0.0</code></a>');
    assertStringIncludes(list, " from 1.0.0");
    assertStringIncludes(list, "Base on clothes");
    assertStringIncludes(list, '<a href="/zoo/letters"><code>zoo/letters@0.1.0</code></a>');
    assert(!list.includes("unrelated"), "a similar name is not a child");
    const leaf = await page("/zoo/fashion");
    assertStringIncludes(leaf, "No model in this registry names this one as parent.");
  });
});

Deno.test("the favicon answers and every page links it", async () => {
  await withApp(async ({ app, page }) => {
    const r = await app.request("/favicon.ico");
    assertEquals(r.status, 200);
    assertEquals(r.headers.get("content-type"), "image/x-icon");
    const bytes = new Uint8Array(await r.arrayBuffer());
    assertEquals([...bytes.slice(0, 4)], [0, 0, 1, 0], "an ICO header");
    assertEquals([...bytes.slice(22, 26)], [0x89, 0x50, 0x4e, 0x47], "holding a PNG");
    assertStringIncludes(await page("/"), '<link rel="icon" href="/favicon.ico"');
  });
  await withApp(async ({ app }) => {
    const r = await app.request("/favicon.ico");
    assertEquals(r.status, 200, "the icon holds no model data: public on a private registry");
    await r.body?.cancel();
    const page = await app.request("/");
    assertEquals(page.status, 401);
    await page.body?.cancel();
  }, { auth: { private: true } });
});

Deno.test("an image classifier's page loads the registry's own script, served immutable", async () => {
  await withApp(async ({ app, publish, page }) => {
    const files = await modelFiles(tinyConvnet(8));
    await publish("tiny", "1.0.0", files, LENET_CARD);
    await publish("shapes", "1.0.0", files, { task: "regression" });
    const html = await page("/zoo/tiny");
    const src = /<script type="module" src="(\/assets\/zoo-[0-9a-f]{12}\.js)"><\/script>/.exec(html)
      ?.[1];
    assert(src, "the page names its hashed script");
    assertEquals(html.match(/<script/g)?.length, 2, "the module and its JSON data, nothing inline");
    const data = /<script type="application\/json" id="zoo-model">(.*?)<\/script>/s.exec(html)?.[1];
    const model = JSON.parse(data!) as Record<string, unknown>;
    assertEquals(model.modelUrl, "/api/models/zoo/tiny/1.0.0/model.json");
    assertEquals(model.preprocessing, { height: 16, width: 16, channels: 1, range: [0, 1] });
    assertEquals(model.draw, false);
    assertStringIncludes(html, 'id="try-it"');
    assertStringIncludes(html, 'id="fine-tune"');
    const wasm = Object.values(model.wasm as Record<string, string>);
    assertEquals(wasm.length, 3);
    for (const path of [src, ...wasm]) {
      const r = await app.request(path);
      assertEquals(r.status, 200, path);
      assertEquals(r.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assertMatch(
        r.headers.get("content-type") ?? "",
        path.endsWith(".js") ? /^text\/javascript/ : /^application\/wasm$/,
      );
      await r.body?.cancel();
    }
    const js = await (await app.request(src)).text();
    assert(!/https?:\/\/(cdn|unpkg|jsdelivr)/.test(js), "the bundle fetches from no CDN");
    const missing = await app.request("/assets/zoo-000000000000.js");
    assertEquals(missing.status, 404);
    assertEquals(missing.headers.get("content-type"), "application/problem+json");
    assertStringIncludes((await missing.json()).detail, 'No asset "zoo-000000000000.js"');
    assert(!(await page("/zoo/shapes")).includes("<script"), "other tasks get no script");
    assert(!(await page("/zoo/tiny/1.0.0")).includes("<script"), "nor do version pages");
  });
});

Deno.test("the checked-in web bundle matches a fresh build", async () => {
  const out = await runDeno(["run", "-A", "web/build.ts", "--check"]);
  const text = out.stdout + out.stderr;
  assertEquals(out.code, 0, text);
  assertStringIncludes(text, "web/dist matches a fresh build");
});
