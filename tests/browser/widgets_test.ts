/**
 * The model page's widgets in Debian's Chromium, driven by playwright-core
 * over a real registry (SQLite file, loopback port) holding zoo/lenet5:
 * "Try it" must agree with the SDK in Deno on the same PNG, and "Fine-tune
 * here" must learn two Fashion-MNIST classes from 10 PNGs each and publish a
 * version the API then serves. Chromium is asked for WebGPU on SwiftShader
 * (Vulkan); the page falls back to webgl, wasm, cpu, and the test prints which ran.
 * A second test serves the zoo's MobileNetV2 (224×224×3) from a private
 * registry: the page reads it with the token typed into its token field and
 * must agree with the SDK too, on wasm and on `?backend=webgl` (or say that
 * webgl does not start and fall back; the test prints which). A third asks
 * for webgpu in a Chromium without an adapter: the page names it and runs on the next backend.
 *
 * `ZOO_SCREENSHOTS=<folder>` saves screenshots of the pages there (the README's come from it).
 */
import * as tf from "@tensorflow/tfjs";
import pngjs from "pngjs";
import { assert, assertAlmostEquals, assertEquals, assertStringIncludes } from "@std/assert";
import { chromium } from "playwright-core";
import { createRegistryApp } from "../../registry/app.ts";
import { createToken } from "../../registry/auth.ts";
import { openSqliteFsStore } from "../../registry/storage/sqlite_fs.ts";
import { type PageTestFile, publishVia } from "../registry/_pages_fixtures.ts";
import { publish, startRegistry } from "../_helpers/registry.ts";
import { zooEntries } from "../../zoo/mod.ts";
import { FASHION_MNIST_CLASSES, loadBuiltin } from "../../sdk/data/builtin.ts";
import { decodeImage, imagesToTensor } from "../../sdk/data/_image.ts";
import type { Dataset, Preprocessing } from "../../sdk/data/types.ts";

await tf.setBackend("cpu");

const CHROMIUM = "/usr/bin/chromium";
const chromiumMissing = await Deno.stat(CHROMIUM).then(() => false, () => true);
const LENET = new URL("../../zoo/lenet5/checkpoint/", import.meta.url);
const PRE: Preprocessing = { height: 28, width: 28, channels: 1, range: [0, 1] };
/** Flags that give headless Chromium a WebGPU adapter on SwiftShader's Vulkan. */
const WEBGPU_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-vulkan-surface",
];

// pngjs ships no types; this is the part used.
interface PngWriter {
  PNG: new (o: { width: number; height: number }) => { data: Uint8Array };
}
const PNG = (pngjs as unknown as PngWriter).PNG;
const writePng = (pngjs as unknown as { PNG: { sync: { write(p: unknown): Uint8Array } } }).PNG
  .sync.write;

/** An RGBA PNG of a 28×28 grayscale image given as values 0..255. */
function grayPng(values: ArrayLike<number>): Uint8Array {
  const png = new PNG({ width: 28, height: 28 });
  for (let i = 0; i < 28 * 28; i++) {
    const v = Math.round(values[i]!);
    png.data.set([v, v, v, 255], i * 4);
  }
  return writePng(png);
}

/** The images of some classes of a dataset as PNGs, with their class index. */
async function pngsOf(
  data: Dataset,
  classes: number[],
): Promise<{ png: Uint8Array; label: number }[]> {
  const out: { png: Uint8Array; label: number }[] = [];
  for await (const b of data.batches(64, { preprocess: { ...PRE, range: [0, 255] } })) {
    const xs = await b.xs.data();
    const ys = await b.ys.data();
    b.xs.dispose();
    b.ys.dispose();
    ys.forEach((y, i) => {
      if (classes.includes(y)) {
        out.push({ png: grayPng(xs.subarray(i * 784, (i + 1) * 784)), label: y });
      }
    });
  }
  return out;
}

type Browser = Awaited<ReturnType<typeof chromium.launch>>;
type Page = Awaited<ReturnType<Browser["newPage"]>>;

/** Debian's Chromium, headless, asked for WebGPU on SwiftShader. */
function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--no-first-run", ...WEBGPU_FLAGS],
  });
}

/** A page that collects script errors and failed responses, with waits that say what went wrong. */
async function widgetPage(browser: Browser) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // Failed responses are judged below, by method: publishing asks HEAD for blobs it may lack.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) {
      errors.push(m.text());
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && r.request().method() !== "HEAD") {
      errors.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
    }
  });
  const logs: string[] = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  /** Waits for a widget's state, or fails with what the page said. */
  const waitState = async (widget: string, state: string, timeout: number) => {
    try {
      await page.waitForSelector(`#${widget}[data-state=${state}]`, { timeout });
    } catch (e) {
      const said = await page.locator(`#${widget}`).innerText().catch(() => "");
      throw new Error(
        `#${widget} did not reach "${state}": ${said}\nerrors: ${errors.join("; ")}\nconsole: ${
          logs.slice(-20).join("\n")
        }`,
        { cause: e },
      );
    }
  };
  /** Runs Try it on an image file and returns the classes shown, with their probabilities. */
  const tryImage = async (path: string, timeout = 30_000) => {
    await page.setInputFiles("#try-file", path);
    await waitState("try-it", "done", timeout);
    return await page.locator("#try-results li").evaluateAll((lis) =>
      lis.map((li) => {
        const d = (li as unknown as { dataset: Record<string, string> }).dataset;
        return { index: Number(d.index), p: Number(d.p) };
      })
    );
  };
  return { page, errors, waitState, tryImage };
}

/** Asserts that the page showed Deno's top-1 first and every shown probability within 1e-4. */
function assertAgrees(shown: { index: number; p: number }[], expected: ArrayLike<number>): void {
  const top = [...Array.from(expected).keys()].sort((a, b) => expected[b]! - expected[a]!);
  assertEquals(shown[0]?.index, top[0], "the same top-1 class");
  for (const s of shown) assertAlmostEquals(s.p, expected[s.index]!, 1e-4);
}

async function readDir(url: URL): Promise<PageTestFile[]> {
  const files: PageTestFile[] = [];
  for (const path of ["model.json", "group1-shard1of1.bin", "README.md"]) {
    files.push({ path, bytes: await Deno.readFile(new URL(path, url)) });
  }
  return files;
}

Deno.test({
  name: "Try it agrees with the SDK and Fine-tune here learns and publishes, in Chromium",
  ignore: chromiumMissing,
  sanitizeResources: false,
  async fn() {
    const started = performance.now();
    const dir = await Deno.makeTempDir({ prefix: "zoo-widgets-" });
    const store = await openSqliteFsStore(dir);
    const app = createRegistryApp({ store });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const shots = Deno.env.get("ZOO_SCREENSHOTS");
    let browser: Browser | undefined;
    try {
      const { token } = await createToken(store, ["publish:zoo", "publish:me"], "widgets test");
      const card = JSON.parse(await Deno.readTextFile(new URL("card.json", LENET)));
      await publishVia(app, token, "lenet5", "1.0.0", await readDir(LENET), card);

      // The image both sides classify: an MNIST test digit as a PNG file.
      const digits = await loadBuiltin("mnist", { split: "test", perClass: 1 });
      const [digit] = await pngsOf(digits, [7]);
      const digitPath = `${dir}/digit.png`;
      await Deno.writeFile(digitPath, digit!.png);
      const reference = await tf.loadLayersModel(
        `${origin}/api/models/zoo/lenet5/1.0.0/model.json`,
      );
      const expected = tf.tidy(() =>
        (reference.predict(imagesToTensor([decodeImage(digit!.png)], PRE)) as tf.Tensor)
          .dataSync()
      );

      browser = await launch();
      const { page, errors, waitState, tryImage } = await widgetPage(browser);
      await page.goto(`${origin}/zoo/lenet5`);
      await waitState("try-it", "ready", 60_000);
      const backend = await page.locator("#try-it").getAttribute("data-backend");
      const adapter = await page.evaluate(async () => {
        const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
        return gpu ? (await gpu.requestAdapter()) !== null : false;
      });
      console.log(
        `Chromium ran the page on ${backend}` +
          (backend === "webgpu"
            ? " (SwiftShader's Vulkan adapter)"
            : `: WebGPU adapter ${adapter ? "present but unused" : "missing"}, fell back`),
      );
      assert(backend && ["webgpu", "webgl", "wasm", "cpu"].includes(backend), `${backend}`);

      // Try it: the same top-1, probabilities within 1e-4.
      const shown = await tryImage(digitPath);
      assertAgrees(shown, expected);
      assertEquals(shown[0]?.index, 7, "the digit is a 7");
      assertStringIncludes(await page.locator("#try-status").innerText(), `Ran on ${backend}`);
      if (shots) {
        await Deno.mkdir(shots, { recursive: true });
        await page.locator("#try-it").screenshot({ path: `${shots}/try-it.png` });
      }

      // A 28×28×1 model gets a canvas: a vertical stroke reads as a 1.
      await page.click("#try-clear");
      assertEquals(await page.locator("#try-results li").count(), 0);
      const box = (await page.locator("#try-canvas").boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.8, { steps: 12 });
      await page.mouse.up();
      await page.waitForSelector("#try-results li", { timeout: 30_000 });
      await waitState("try-it", "done", 30_000);
      assertEquals(await page.locator("#try-results li").first().getAttribute("data-label"), "1");

      // Readable on a 1280-px screen: nothing wider than the window, the layer table unclipped.
      interface Box {
        scrollWidth: number;
        parentElement: { clientWidth: number };
        ownerDocument: { documentElement: { scrollWidth: number } };
      }
      const widths = await page.locator("#layer-table").evaluate((el) => {
        const t = el as unknown as Box;
        return {
          page: t.ownerDocument.documentElement.scrollWidth,
          table: t.scrollWidth,
          box: t.parentElement.clientWidth,
        };
      });
      assert(widths.page <= 1280 && widths.table <= widths.box, JSON.stringify(widths));
      assertEquals(await page.locator("h2", { hasText: /^Architecture$/ }).count(), 1);

      // Fine-tune here: T-shirt/top vs Trouser, 10 PNGs each.
      const classes = [0, 1];
      const train = await pngsOf(await loadBuiltin("fashion-mnist", { perClass: 10 }), classes);
      assertEquals(train.length, 20);
      const rows = page.locator("#ft-classes .ft-class");
      for (const c of classes) {
        const files = train.filter((t) => t.label === c).map((t, i) => ({
          name: `${c}-${i}.png`,
          mimeType: "image/png",
          buffer: t.png,
        }));
        await rows.nth(c).locator('input[type="text"]').fill(FASHION_MNIST_CLASSES[c]!);
        // playwright-core's types want Node's Buffer; a Uint8Array is what it sends.
        await rows.nth(c).locator('input[type="file"]').setInputFiles(
          files as unknown as Parameters<typeof page.setInputFiles>[1],
        );
        await page.waitForSelector(`#ft-classes .ft-class:nth-child(${c + 1})[data-count="10"]`);
      }
      await page.click("#ft-train");
      await waitState("fine-tune", "trained", 90_000);
      const pageVal = Number(await page.locator("#fine-tune").getAttribute("data-val-accuracy"));
      console.log(`Fine-tune here: ${await page.locator("#ft-status").innerText()}`);
      console.log(`validation accuracy on the page: ${pageVal} (4 images)`);
      await page.fill("#ft-name", "me/lenet5-clothes");
      await page.fill("#ft-token", token);
      await page.click("#ft-publish-button");
      await waitState("fine-tune", "published", 30_000);
      assertEquals(
        await page.locator("#ft-published-link").getAttribute("href"),
        "/me/lenet5-clothes/1.0.0",
      );
      if (shots) await page.locator("#fine-tune").screenshot({ path: `${shots}/fine-tune.png` });
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click("#ft-download"),
      ]);
      assertEquals(download.suggestedFilename(), "model.json");
      const saved = JSON.parse(await Deno.readTextFile(await download.path()));
      assertEquals(saved.format, "layers-model");
      assertEquals(errors, []);

      // The API serves the new version; it classifies those two classes' validation images.
      const doc = await (await fetch(`${origin}/api/models/me/lenet5-clothes/1.0.0`)).json();
      assertEquals(doc.card.parent, "zoo/lenet5@1.0.0");
      assertEquals(doc.card.labels, ["T-shirt/top", "Trouser"]);
      assertEquals(doc.card.imageCounts, { "T-shirt/top": 10, "Trouser": 10 });
      assert(String(doc.card.parentDigest).startsWith("sha256:"));
      assert(typeof doc.card.fineTuning.cutLayer === "string");
      const readmeEntry = (doc.files as { path: string; digest: string }[])
        .find((f) => f.path === "README.md");
      const readme = await (await fetch(`${origin}/api/blobs/${readmeEntry?.digest}`)).text();
      assertStringIncludes(readme, "# me/lenet5-clothes\n");
      assertStringIncludes(readme, "- parent: `zoo/lenet5@1.0.0`");
      const tuned = await tf.loadLayersModel(
        `${origin}/api/models/me/lenet5-clothes/1.0.0/model.json`,
      );
      const val = await pngsOf(
        await loadBuiltin("fashion-mnist", { split: "validation", perClass: 100 }),
        classes,
      );
      const predicted = tf.tidy(() =>
        (tuned.predict(imagesToTensor(val.map((v) => decodeImage(v.png)), PRE)) as tf.Tensor)
          .argMax(-1).dataSync()
      );
      const correct = val.filter((v, i) => predicted[i] === v.label).length;
      const accuracy = correct / val.length;
      console.log(
        `the published model: ${(accuracy * 100).toFixed(1)}% of ${val.length} validation images`,
      );
      assert(accuracy >= 0.9, `validation accuracy ${accuracy}`);

      await page.goto(`${origin}/zoo/lenet5`);
      assertStringIncludes(
        await page.locator("#fine-tunes").innerText(),
        "me/lenet5-clothes@1.0.0",
      );
      if (shots) await page.screenshot({ path: `${shots}/model-page.png`, fullPage: false });
      if (shots) {
        await page.goto(`${origin}/zoo/lenet5/1.0.0`);
        await page.locator("#version").scrollIntoViewIfNeeded();
        await page.screenshot({ path: `${shots}/version-page.png` });
      }

      // The wasm backend loads its binaries from /assets under the page's CSP, and agrees too.
      await page.goto(`${origin}/zoo/lenet5?backend=wasm`);
      await waitState("try-it", "ready", 60_000);
      assertEquals(await page.locator("#try-it").getAttribute("data-backend"), "wasm");
      assertAgrees(await tryImage(digitPath), expected);
      assertEquals(errors, []);
      tuned.dispose();
      reference.dispose();
      console.log(`in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      await browser?.close();
      await server.shutdown();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A `width`×`height` RGB PNG with smooth color gradients and a few shapes. */
function colorPng(width: number, height: number): Uint8Array {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const disc = (x - width * 0.6) ** 2 + (y - height * 0.4) ** 2 < (height * 0.25) ** 2;
      const bar = Math.abs(x - width * 0.25) < width * 0.06;
      const rgb = disc
        ? [230, 190, 150]
        : bar
        ? [30, 60, 160]
        : [Math.round(255 * x / width), Math.round(255 * y / height), 120];
      png.data.set([...rgb, 255], (y * width + x) * 4);
    }
  }
  return writePng(png);
}

Deno.test({
  name:
    "on a private registry Try it reads a 224×224×3 MobileNetV2 with the page's token and agrees with the SDK",
  ignore: chromiumMissing,
  sanitizeResources: false,
  async fn() {
    const started = performance.now();
    await using reg = await startRegistry({
      embedded: true,
      auth: { private: true },
      scopes: ["publish:zoo", "read"],
    });
    const reader = await reg.mint(["read"]);
    const [entry] = await zooEntries({ only: ["mobilenet-v2"] });
    const published = await publish(
      reg,
      "zoo/mobilenet-v2",
      entry!.version,
      entry!.files,
      entry!.card,
    );
    assertEquals(published.status, 201, await published.text());
    const pre = entry!.card.preprocessing as Preprocessing;
    assertEquals([pre.height, pre.width, pre.channels], [224, 224, 3]);

    // An image of another size, so both sides resize it as the card says.
    const png = colorPng(200, 150);
    const imagePath = `${reg.dataDir}/colors.png`;
    await Deno.writeFile(imagePath, png);
    const reference = await tf.loadLayersModel(
      `${reg.url}/api/models/zoo/mobilenet-v2/${entry!.version}/model.json`,
      { requestInit: { headers: { authorization: `Bearer ${reader}` } } },
    );
    const expected = tf.tidy(() =>
      (reference.predict(imagesToTensor([decodeImage(png)], pre)) as tf.Tensor).dataSync()
    );
    reference.dispose();
    const sorted = [...expected].sort((a, b) => b - a);
    console.log(`the SDK in Deno: top-1 margin ${(sorted[0]! - sorted[1]!).toFixed(4)}`);

    const browser = await launch();
    try {
      const { page, errors, waitState, tryImage } = await widgetPage(browser);
      // The page itself needs a read token too: a browser gets it through whatever adds the
      // header to its navigations (here this route, as a proxy in front of the registry
      // would). The page's own reads carry only the token typed into its token field.
      await page.route(`${reg.url}/zoo/**`, (route) =>
        route.continue({
          headers: { ...route.request().headers(), authorization: `Bearer ${reader}` },
        }));
      // wasm: MobileNetV2's first run on SwiftShader's WebGPU compiles its shaders for about
      // 40 s on a 2-core machine; the LeNet-5 test above covers webgpu.
      const modelPage = `${reg.url}/zoo/mobilenet-v2`;
      await page.goto(`${modelPage}?backend=wasm`);
      await waitState("try-it", "error", 60_000);
      assertStringIncludes(
        await page.locator("#try-status").innerText(),
        "this registry is private: enter a token",
      );
      assertEquals(errors.filter((e) => !/model\.json: 401$/.test(e)), []);
      errors.length = 0;

      await page.fill("#ft-token", reader);
      await page.locator("#ft-token").dispatchEvent("change");
      await waitState("try-it", "ready", 60_000);
      const backend = await page.locator("#try-it").getAttribute("data-backend");
      const t0 = performance.now();
      assertAgrees(await tryImage(imagePath, 60_000), expected);
      console.log(
        `MobileNetV2 on ${backend}: the same top-1, probabilities within 1e-4, predicted in ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );

      // A reload keeps the token in this tab's sessionStorage, never in the URL.
      await page.reload();
      await waitState("try-it", "ready", 60_000);
      assertEquals(await page.inputValue("#ft-token"), reader);
      assert(!page.url().includes(reader), page.url());

      // webgl when asked for; Chromium may offer no WebGL here, and then the page says so.
      await page.goto(`${modelPage}?backend=webgl`);
      await waitState("try-it", "ready", 60_000);
      const onWebgl = await page.locator("#try-it").getAttribute("data-backend");
      const said = await page.locator("#try-status").innerText();
      if (onWebgl === "webgl") {
        console.log("?backend=webgl ran on webgl (SwiftShader's GL)");
      } else {
        assertStringIncludes(said, "webgl was asked for but does not start in this browser");
        console.log(
          `?backend=webgl: Chromium offers no WebGL here; the page fell back to ${onWebgl}`,
        );
      }
      assertAgrees(await tryImage(imagePath, 60_000), expected);
      assertEquals(errors, []);
      console.log(`in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "a backend asked for that does not start is named on the page, and the next one runs",
  ignore: chromiumMissing,
  sanitizeResources: false,
  async fn() {
    await using reg = await startRegistry({ embedded: true });
    const card = JSON.parse(await Deno.readTextFile(new URL("card.json", LENET)));
    const published = await publish(reg, "zoo/lenet5", "1.0.0", await readDir(LENET), card);
    assertEquals(published.status, 201, await published.text());
    // Without the WebGPU flags and with the GPU off, Chromium gives no WebGPU adapter.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--no-first-run", "--disable-gpu"],
    });
    try {
      const { page, errors, waitState } = await widgetPage(browser);
      await page.goto(`${reg.url}/zoo/lenet5?backend=webgpu`);
      await waitState("try-it", "ready", 60_000);
      const backend = await page.locator("#try-it").getAttribute("data-backend");
      const said = await page.locator("#try-status").innerText();
      console.log(`?backend=webgpu without an adapter: ${said}`);
      assert(backend !== "webgpu", `${backend}`);
      assertStringIncludes(said, `runs on ${backend} (webgpu was asked for but does not start`);
      assertEquals(errors, []);
    } finally {
      await browser.close();
    }
  },
});
