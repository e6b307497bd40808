/**
 * The pages in a real browser: Debian's Chromium, driven by playwright-core
 * over the registry served on a loopback port, seeded through the API.
 */
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { chromium } from "playwright-core";
import { createRegistryApp } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { publishVia, readmeFile, savedFiles, smallConvnet } from "./_pages_fixtures.ts";

await tf.setBackend("cpu");

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT_DIR = "/tmp/zoo-pages-screenshots";

const chromiumMissing = await Deno.stat(CHROMIUM).then(() => false, () => true);

Deno.test({
  name: "a browser lists the models, finds one by search and shows its architecture table",
  ignore: chromiumMissing,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "zoo-browser-" });
    const store = await openSqliteFsStore(dir);
    const app = createRegistryApp({ store });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
    const origin = `http://127.0.0.1:${server.addr.port}`;
    let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
    try {
      const { token } = await createToken(store, ["publish:zoo"], "browser test");
      const files = await savedFiles(smallConvnet(7));
      await publishVia(app, token, "digits-small", "1.0.0", [
        ...files,
        readmeFile(
          "# Digits (small)\n\nA small convnet for **16×16** digits.\n\n" +
            "| split | accuracy |\n| --- | --- |\n| test | 0.97 |\n\n<script>document.title='pwned'</script>\n",
        ),
      ], {
        task: "image-classification",
        description: "A small convnet for 16x16 handwritten digits",
        labels: ["zero", "one", "two"],
        dataset: "digits-16x16",
        license: "MIT",
        preprocessing: { height: 16, width: 16, channels: 1, range: [0, 1] },
        metrics: [{ name: "accuracy", value: 0.97, dataset: "digits-16x16 test" }],
      });
      await publishVia(app, token, "shapes", "0.2.0", files, {
        task: "shape-classification",
        description: "Circles, squares and triangles",
        labels: ["circle", "square", "triangle"],
      });

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--headless",
          "--no-sandbox",
          "--disable-gpu",
          "--no-first-run",
          "--disable-background-networking",
          "--disable-component-update",
          "--disable-sync",
          "--disable-quic",
        ],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));

      await page.goto(`${origin}/`);
      const names = await page.locator("#models tbody tr td:first-child").allTextContents();
      assertEquals(names.map((n) => n.trim()).sort(), ["zoo/digits-small", "zoo/shapes"]);
      await Deno.mkdir(SCREENSHOT_DIR, { recursive: true });
      await page.screenshot({ path: `${SCREENSHOT_DIR}/index.png`, fullPage: true });

      await page.fill('input[name="search"]', "triangles");
      await Promise.all([page.waitForURL(/search=triangles/), page.click('button[type="submit"]')]);
      const found = await page.locator("#models tbody tr td:first-child").allTextContents();
      assertEquals(found.map((n) => n.trim()), ["zoo/shapes"]);

      await page.goto(`${origin}/`);
      await Promise.all([
        page.waitForURL(/\/zoo\/digits-small$/),
        page.click('a[href="/zoo/digits-small"]'),
      ]);
      assertEquals(await page.title(), "zoo/digits-small@1.0.0 · Model zoo");
      assertEquals((await page.locator("#card h1").textContent())?.trim(), "Digits (small)");
      assertStringIncludes(
        await page.locator("#card").innerText(),
        "<script>document.title='pwned'</script>",
      );
      const rows = page.locator("#layer-table tbody tr");
      const layerNames = await rows.locator("td:first-child code").allTextContents();
      for (const name of ["conv1", "pool1", "conv2", "flatten", "logits"]) {
        assert(layerNames.includes(name), `layer ${name} is in the table: ${layerNames}`);
      }
      const conv2 = await page.locator("#layer-conv2 td").allTextContents();
      assertEquals(conv2.slice(1, 4), ["Conv2D", "(None, 5, 5, 8)", "296"]);
      assertStringIncludes(conv2[0] ?? "", "feature cut");
      assertStringIncludes(
        await page.locator("#snippet-tfjs").textContent() ?? "",
        `tf.loadLayersModel("${origin}/api/models/zoo/digits-small/1.0.0/model.json")`,
      );
      await page.screenshot({ path: `${SCREENSHOT_DIR}/model.png`, fullPage: true });
      assertEquals(errors, []);
    } finally {
      await browser?.close();
      await server.shutdown();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
