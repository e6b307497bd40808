/// <reference no-default-lib="true" />
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="esnext" />
/**
 * The script of a model page, bundled with the SDK modules and TensorFlow.js
 * it imports (`deno task build:web` writes `web/dist/zoo-<hash>.js`; the
 * registry serves it from `/assets/`). It brings two widgets to life on the
 * page of an image classifier, reading what it needs from the page's
 * `<script type="application/json" id="zoo-model">`:
 *
 * - **Try it**: pick, drop or (for 28×28×1 models) draw an image; it is
 *   preprocessed as the card says with the SDK's `imagesToTensor` and the
 *   model predicts in the browser; the top classes show as bars, with the
 *   backend that ran (webgpu, else webgl, else wasm, else cpu; `?backend=`
 *   picks one).
 * - **Fine-tune here**: name two or more classes and add images; the
 *   advisor (`advise`, with `measureSimilarity` when the card has source
 *   statistics) picks the cut point, `featureStrategy` computes the codes and
 *   trains a softmax head with a live loss and accuracy curve, and the new
 *   model can be tried, published through the registry's publish API with a
 *   token (its card from `lineageCard`, its README from `cardReadme`) or
 *   downloaded as files.
 *
 * On a private registry the page reads the model with the token of the
 * publish form's token field (`Authorization: Bearer`), which the tab keeps in
 * sessionStorage, never in a URL; without one, Try it says where to enter it.
 *
 * Each widget's root carries `data-state` (`loading`, `ready`, `error`;
 * `idle`, `training`, `trained`, `published`) and results carry their exact
 * probabilities in `data-p`, so a test can read what a person sees.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import * as sdk from "./_sdk.ts";

/** What the page tells the script about its model (see `registry/pages/model_page.tsx`). */
interface PageModel {
  reference: string;
  modelUrl: string;
  modelDigest: string;
  labels: string[];
  preprocessing: sdk.Preprocessing;
  cutPoints: string[];
  featureCut: string | null;
  layers: { name: string; outputShape: (number | null)[] }[];
  sourceStats: Parameters<typeof sdk.measureSimilarity>[1] | null;
  source: string | null;
  draw: boolean;
  publishName: string;
  wasm: Record<string, string>;
}

/** Decoded pixels, as the SDK's preprocessing takes them. */
type RawImage = sdk.RawImage;

/** Backends in the order tried. */
const BACKENDS = ["webgpu", "webgl", "wasm", "cpu"] as const;
/** Classes shown under Try it. */
const TOP_K = 5;
/** One image in this many goes to the validation split when a class has at least 5. */
const VALIDATION_EVERY = 5;
/**
 * Where the token field's value is kept: this tab's sessionStorage, so a
 * reload keeps it and closing the tab forgets it; it never goes into a URL.
 */
const TOKEN_KEY = "zoo-token";

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`The page lacks the element "#${id}"`);
  return el;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Starts the first backend that works: the one asked for in `?backend=`, else
 * webgpu, webgl, wasm, cpu.
 *
 * @returns its name, and when `?backend=` named another one that did not start, that one
 */
async function startBackend(
  wasm: Record<string, string>,
): Promise<{ name: string; missed: string | null }> {
  setWasmPaths(wasm);
  const asked = new URL(location.href).searchParams.get("backend");
  const order = asked ? [asked, ...BACKENDS.filter((b) => b !== asked)] : [...BACKENDS];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return { name, missed: asked && asked !== name ? asked : null };
      }
    } catch {
      // This backend cannot start here (no adapter, no WebGL context): try the next.
    }
  }
  throw new Error("No TensorFlow.js backend starts in this browser");
}

/** Decodes an image file to RGB pixels at its own size, without color conversion. */
async function readImage(file: Blob): Promise<RawImage> {
  const bitmap = await createImageBitmap(file, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  try {
    return pixelsOf(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/** RGB pixels of an image drawn at `width`×`height` (alpha dropped). */
function pixelsOf(source: CanvasImageSource, width: number, height: number): RawImage {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx) throw new Error("This browser gives no 2D canvas to read the image");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]!;
    rgb[j + 1] = rgba[i + 1]!;
    rgb[j + 2] = rgba[i + 2]!;
  }
  return { data: rgb, height, width, channels: 3 };
}

/** Class probabilities of one image: the model's output, softmaxed when it is not one already. */
async function predict(
  model: tf.LayersModel,
  image: RawImage,
  p: sdk.Preprocessing,
): Promise<Float32Array> {
  const y = tf.tidy(() => {
    const x = sdk.imagesToTensor([image], p);
    const out = (model.predict(x) as tf.Tensor).reshape([-1]);
    return out;
  });
  const raw = await y.data() as Float32Array;
  y.dispose();
  const sum = raw.reduce((a, b) => a + b, 0);
  if (raw.every((v) => v >= 0) && Math.abs(sum - 1) < 1e-3) return raw;
  return tf.tidy(() => tf.softmax(tf.tensor1d(raw)).dataSync() as Float32Array);
}

/** Writes the top classes as bars. */
function showBars(list: HTMLElement, probs: Float32Array, labels: string[]): void {
  const order = [...probs.keys()].sort((a, b) => probs[b]! - probs[a]!).slice(0, TOP_K);
  list.replaceChildren(...order.map((i) => {
    const li = document.createElement("li");
    const p = probs[i]!;
    li.dataset.label = labels[i] ?? String(i);
    li.dataset.index = String(i);
    li.dataset.p = String(p);
    const name = document.createElement("span");
    name.textContent = labels[i] ?? `class ${i}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(p * 100).toFixed(1)}%`;
    const pct = document.createElement("span");
    pct.className = "p";
    pct.textContent = `${(p * 100).toFixed(1)}%`;
    li.append(name, bar, pct);
    return li;
  }));
}

/** Makes a label accept dropped image files. */
function onDrop(zone: HTMLElement, handle: (files: File[]) => void): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...(e.dataTransfer?.files ?? [])].filter((f) => f.type.startsWith("image/"));
    if (files.length > 0) handle(files);
  });
}

function setupDrawing(canvas: HTMLCanvasElement, onDone: () => void): () => void {
  const ctx = canvas.getContext("2d")!;
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let drawing = false;
  const at = (e: PointerEvent) => {
    const r = canvas.getBoundingClientRect();
    return [
      (e.clientX - r.left) * canvas.width / r.width,
      (e.clientY - r.top) * canvas.height / r.height,
    ];
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    const [x, y] = at(e);
    ctx.beginPath();
    ctx.moveTo(x!, y!);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineTo(x!, y!);
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    onDone();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return clear;
}

/** The registry refused to let the page read: it is private and the token is missing or cannot read. */
class ReadRefused extends Error {}

/** The page's model, loaded once for both widgets, with the token of the token field. */
class PageSession {
  readonly info: PageModel;
  backend = "";
  /** Said after the backend's name when `?backend=` asked for one that did not start. */
  fallback = "";
  #model: Promise<tf.LayersModel> | undefined;

  constructor(info: PageModel) {
    this.info = info;
  }

  /** The token field's value. */
  token(): string {
    return ($("ft-token") as HTMLInputElement).value.trim();
  }

  /** `Authorization: Bearer` with the token, for reads on a private registry and for publishing. */
  auth(): Record<string, string> {
    const token = this.token();
    return token ? { authorization: `Bearer ${token}` } : {};
  }

  /** The page's model; a failed load is forgotten, so the next call tries again (with a new token). */
  model(): Promise<tf.LayersModel> {
    this.#model ??= (async () => {
      if (!this.backend) {
        const { name, missed } = await startBackend(this.info.wasm);
        this.backend = name;
        if (missed) this.fallback = ` (${missed} was asked for but does not start in this browser)`;
      }
      let refused = 0;
      const fetchFunc = async (input: RequestInfo | URL, init?: RequestInit) => {
        const res = await fetch(input, init);
        if (res.status === 401 || res.status === 403) refused = res.status;
        return res;
      };
      try {
        return await tf.loadLayersModel(this.info.modelUrl, {
          requestInit: { headers: this.auth() },
          fetchFunc,
        });
      } catch (e) {
        if (refused === 0) throw e;
        throw new ReadRefused(
          refused === 401
            ? 'this registry is private: enter a token with the "read" scope in the token field (under Fine-tune here); it stays in this tab only'
            : 'the token in the token field cannot read this registry: use one with the "read" scope',
        );
      }
    })();
    this.#model.catch(() => this.#model = undefined);
    return this.#model;
  }
}

function setupTryIt(session: PageSession): void {
  const root = $("try-it");
  const status = $("try-status");
  const results = $("try-results");
  const preview = $("try-preview") as HTMLImageElement;
  const { labels, preprocessing } = session.info;
  const run = async (image: RawImage) => {
    try {
      root.dataset.state = "predicting";
      const model = await session.model();
      const t0 = performance.now();
      const probs = await predict(model, image, preprocessing);
      showBars(results, probs, labels);
      status.textContent = `Ran on ${session.backend} in ${
        (performance.now() - t0).toFixed(0)
      } ms, input ${preprocessing.height}×${preprocessing.width}×${preprocessing.channels}, values in [${
        preprocessing.range.join(", ")
      }].`;
      root.dataset.backend = session.backend;
      root.dataset.state = "done";
    } catch (e) {
      root.dataset.state = "error";
      status.textContent = `Cannot run the model: ${message(e)}`;
    }
  };
  const runFile = async (file: File) => {
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    try {
      await run(await readImage(file));
    } catch (e) {
      root.dataset.state = "error";
      status.textContent = `Cannot read "${file.name}": ${
        message(e)
      }; use a PNG, JPEG, WebP or GIF`;
    }
  };
  const input = $("try-file") as HTMLInputElement;
  input.addEventListener("change", () => {
    const f = input.files?.[0];
    if (f) void runFile(f);
  });
  onDrop($("try-drop"), (files) => void runFile(files[0]!));
  if (session.info.draw) {
    const canvas = $("try-canvas") as HTMLCanvasElement;
    const clear = setupDrawing(canvas, () => {
      preview.hidden = true;
      void run(pixelsOf(canvas, preprocessing.width, preprocessing.height));
    });
    $("try-clear").addEventListener("click", () => {
      clear();
      results.replaceChildren();
    });
  }
  const load = () =>
    session.model().then(() => {
      root.dataset.state = "ready";
      root.dataset.backend = session.backend;
      status.textContent = `Model loaded; it runs on ${session.backend}${session.fallback}.`;
    }, (e) => {
      root.dataset.state = "error";
      root.dataset.refused = String(e instanceof ReadRefused);
      status.textContent = `Cannot load the model: ${message(e)}`;
    });
  const token = $("ft-token") as HTMLInputElement;
  token.value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  token.addEventListener("change", () => {
    if (token.value.trim()) sessionStorage.setItem(TOKEN_KEY, token.value.trim());
    else sessionStorage.removeItem(TOKEN_KEY);
    if (root.dataset.refused === "true") {
      root.dataset.state = "loading";
      status.textContent = "Loading the model with the token…";
      void load();
    }
  });
  void load();
}

interface ClassRow {
  name: HTMLInputElement;
  images: RawImage[];
  count: HTMLElement;
  thumbs: HTMLElement;
}

function drawCurve(canvas: HTMLCanvasElement, history: sdk.EpochMetrics[]): void {
  const ctx = canvas.getContext("2d")!;
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "12px system-ui";
  if (history.length === 0) return;
  const pad = 28;
  const maxLoss = Math.max(...history.map((m) => m.trainLoss), 1e-6);
  const n = Math.max(history.length - 1, 1);
  const xOf = (i: number) => pad + (w - 2 * pad) * i / n;
  const line = (values: number[], max: number, color: string) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => {
      const y = h - pad - (h - 2 * pad) * v / max;
      if (i === 0) ctx.moveTo(xOf(i), y);
      else ctx.lineTo(xOf(i), y);
    });
    ctx.stroke();
  };
  line(history.map((m) => m.trainLoss), maxLoss, "#a4411a");
  line(history.map((m) => m.trainAccuracy), 1, "#2857c5");
  const val = history.map((m) => m.valAccuracy).filter((v): v is number => v !== undefined);
  if (val.length === history.length) line(val, 1, "#1c7a4a");
  ctx.strokeStyle = "#e3e6ec";
  ctx.lineWidth = 1;
  ctx.strokeRect(pad, pad, w - 2 * pad, h - 2 * pad);
  ctx.fillStyle = "#5b6475";
  ctx.fillText(`epoch ${history.at(-1)!.epoch}`, w - pad - 60, h - 8);
  // Accuracy runs 0..1 on the whole height; loss 0..its largest value so far.
  ctx.fillText(`acc 1, loss ${maxLoss.toPrecision(2)}`, pad + 4, pad + 12);
  ctx.fillText("0", pad - 12, h - pad);
  ctx.fillStyle = "#a4411a";
  ctx.fillText("loss", pad, 14);
  ctx.fillStyle = "#2857c5";
  ctx.fillText("train acc", pad + 40, 14);
  ctx.fillStyle = "#1c7a4a";
  ctx.fillText("val acc", pad + 110, 14);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return `sha256:${[...hash].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function problemText(res: Response): Promise<string> {
  try {
    const body = await res.json() as { detail?: string; title?: string };
    return body.detail ?? body.title ?? res.statusText;
  } catch {
    return res.statusText;
  }
}

/** Publishes files through the registry's API: missing blobs first, then the version. */
async function publishFiles(
  name: string,
  version: string,
  auth: Record<string, string>,
  files: { path: string; bytes: Uint8Array }[],
  card: Record<string, unknown>,
): Promise<string> {
  const entries = [];
  for (const f of files) {
    const digest = await sha256(f.bytes);
    entries.push({ path: f.path, digest, size: f.bytes.length });
    const head = await fetch(`/api/blobs/${digest}`, { method: "HEAD", headers: auth });
    if (head.ok) continue;
    const up = await fetch(`/api/blobs?digest=${encodeURIComponent(digest)}`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body: f.bytes as BufferSource,
    });
    if (!up.ok) {
      throw new Error(`uploading "${f.path}" failed (${up.status}): ${await problemText(up)}`);
    }
  }
  const res = await fetch(`/api/models/${name}/${encodeURIComponent(version)}`, {
    method: "PUT",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ files: entries, card }),
  });
  if (!res.ok) throw new Error(`the registry refused (${res.status}): ${await problemText(res)}`);
  return `/${name}/${version}`;
}

function setupFineTune(session: PageSession): void {
  const root = $("fine-tune");
  const status = $("ft-status");
  const list = $("ft-classes");
  const rows: ClassRow[] = [];
  const info = session.info;
  let trained:
    | { model: tf.LayersModel; classes: string[]; card: Record<string, unknown> }
    | undefined;

  const addClass = () => {
    const div = document.createElement("div");
    div.className = "ft-class";
    const name = document.createElement("input");
    name.type = "text";
    name.value = `Class ${rows.length + 1}`;
    name.setAttribute("aria-label", "Class name");
    const label = document.createElement("label");
    label.className = "drop";
    label.textContent = "Add images ";
    const input = document.createElement("input");
    input.type = "file";
    input.multiple = true;
    input.accept = "image/*";
    label.append(input);
    const count = document.createElement("span");
    count.className = "muted small count";
    count.textContent = "0 images";
    const thumbs = document.createElement("span");
    thumbs.className = "thumbs";
    div.append(name, label, count, thumbs);
    list.append(div);
    const row: ClassRow = { name, images: [], count, thumbs };
    rows.push(row);
    const add = async (files: File[]) => {
      for (const f of files) {
        try {
          row.images.push(await readImage(f));
          if (row.thumbs.childElementCount < 12) {
            const img = document.createElement("img");
            img.src = URL.createObjectURL(f);
            img.alt = "";
            row.thumbs.append(img);
          }
        } catch (e) {
          status.textContent = `Cannot read "${f.name}": ${
            message(e)
          }; use a PNG, JPEG, WebP or GIF`;
        }
      }
      row.count.textContent = `${row.images.length} images`;
      div.dataset.count = String(row.images.length);
    };
    input.addEventListener("change", () => void add([...(input.files ?? [])]));
    onDrop(label, (files) => void add(files));
  };
  addClass();
  addClass();
  $("ft-add-class").addEventListener("click", addClass);
  ($("ft-name") as HTMLInputElement).value = info.publishName;

  const curve = $("ft-curve") as HTMLCanvasElement;
  $("ft-train").addEventListener("click", async () => {
    const classes = rows.map((r) => r.name.value.trim());
    const filled = rows.filter((r) => r.images.length > 0);
    if (filled.length < 2 || filled.length !== rows.length) {
      status.textContent =
        "Add images to every class, and use at least two classes: a class without images cannot be learned";
      return;
    }
    if (new Set(classes).size !== classes.length || classes.some((c) => c === "")) {
      status.textContent = `Invalid class names "${
        classes.join('", "')
      }": give each class its own name`;
      return;
    }
    const button = $("ft-train") as HTMLButtonElement;
    button.disabled = true;
    root.dataset.state = "training";
    const t0 = performance.now();
    try {
      const model = await session.model();
      const trainImages: RawImage[] = [];
      const trainLabels: number[] = [];
      const valImages: RawImage[] = [];
      const valLabels: number[] = [];
      rows.forEach((r, c) => {
        r.images.forEach((im, i) => {
          const toVal = r.images.length >= VALIDATION_EVERY &&
            i % VALIDATION_EVERY === VALIDATION_EVERY - 1;
          (toVal ? valImages : trainImages).push(im);
          (toVal ? valLabels : trainLabels).push(c);
        });
      });
      const dataset = (split: string, images: RawImage[], labels: number[]) =>
        sdk.memoryDataset({
          name: `browser images (${split})`,
          // The code cache is off here; the identity still names this set of images.
          identity: `browser:${split}:${images.length}:${Date.now()}`,
          classes,
          images,
          labels,
        });
      const train = dataset("train", trainImages, trainLabels);
      const validation = valImages.length > 0
        ? dataset("validation", valImages, valLabels)
        : undefined;
      const p = info.preprocessing;
      status.textContent = "Measuring how your images compare with the source data…";
      const similarity = info.sourceStats
        ? await sdk.measureSimilarity(model, info.sourceStats, train, p)
        : 0;
      const advice = sdk.advise({
        examplesPerClass: Math.min(...train.counts),
        similarity,
        cutPoints: info.cutPoints,
        featureCut: info.featureCut,
        layers: info.layers,
        ...(info.source ? { source: info.source } : {}),
      });
      const strategy = advice.strategy.startsWith("features") ? advice.strategy : "features-top";
      const cut = strategy === "features-early" ? advice.cut : undefined;
      status.textContent = `${advice.explanation} Computing codes${cut ? ` at ${cut}` : ""}…`;
      const history: sdk.EpochMetrics[] = [];
      const outcome = await sdk.featureStrategy({
        model,
        train,
        ...(validation ? { validation } : {}),
        preprocess: p,
        numClasses: classes.length,
        epochs: 200,
        batchSize: 32,
        lr: 0.01,
        seed: 0,
        classifier: "softmax",
        ...(cut ? { cut } : {}),
        ...(advice.codes ? { codes: advice.codes } : {}),
        noCache: true,
        checkpointDigest: info.modelDigest,
        onEpoch: (m) => {
          history.push(m);
          drawCurve(curve, history);
          status.textContent = `Epoch ${m.epoch}: loss ${m.trainLoss.toFixed(4)}, train accuracy ${
            (m.trainAccuracy * 100).toFixed(1)
          }%${
            m.valAccuracy === undefined ? "" : `, validation ${(m.valAccuracy * 100).toFixed(1)}%`
          }`;
        },
      });
      drawCurve(curve, outcome.history);
      const last = outcome.history.at(-1);
      const val = last?.valAccuracy;
      $("ft-val").textContent = val === undefined
        ? "no validation images (add 5 or more per class)"
        : `${(val * 100).toFixed(1)}% of ${valImages.length} images`;
      root.dataset.valAccuracy = val === undefined ? "" : String(val);
      const seconds = (performance.now() - t0) / 1000;
      const card = sdk.lineageCard({
        lineage: { reference: info.reference, digest: info.modelDigest, modelName: info.reference },
        labels: classes,
        strategy: advice.strategy,
        requestedStrategy: "auto",
        advice,
        cutLayer: outcome.cutLayer,
        frozenLayers: outcome.frozenLayers,
        learningRates: outcome.learningRates,
        preprocessing: p,
        dataset: {
          name: "images added on the model page",
          identity: train.identity,
          trainSize: train.size,
          ...(validation ? { validationSize: validation.size } : {}),
        },
        epochs: outcome.history.length,
        batchSize: 32,
        seed: 0,
        device: session.backend,
        history: outcome.history,
        ...(last ? { trainAccuracy: last.trainAccuracy } : {}),
        ...(val === undefined ? {} : { validationAccuracy: val }),
        seconds,
        codes: outcome.codes,
      });
      card.imageCounts = Object.fromEntries(rows.map((r, c) => [classes[c], r.images.length]));
      card.fineTunedIn = "browser";
      trained?.model.dispose();
      trained = { model: outcome.model, classes, card };
      root.dataset.state = "trained";
      status.textContent = `Trained in ${
        seconds.toFixed(1)
      } s on ${session.backend}: ${outcome.codes} codes at ${outcome.cutLayer}, ${outcome.history.length} epochs.`;
      for (const id of ["ft-try-file", "ft-publish-button", "ft-download"]) {
        ($(id) as HTMLInputElement).disabled = false;
      }
    } catch (e) {
      root.dataset.state = "error";
      status.textContent = `Cannot fine-tune: ${message(e)}`;
    } finally {
      button.disabled = false;
    }
  });

  const tryInput = $("ft-try-file") as HTMLInputElement;
  tryInput.addEventListener("change", async () => {
    const f = tryInput.files?.[0];
    if (!f || !trained) return;
    try {
      const probs = await predict(trained.model, await readImage(f), info.preprocessing);
      showBars($("ft-results"), probs, trained.classes);
    } catch (e) {
      status.textContent = `Cannot run the new model on "${f.name}": ${message(e)}`;
    }
  });

  const form = $("ft-publish") as HTMLFormElement;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!trained) return;
    const name = ($("ft-name") as HTMLInputElement).value.trim();
    const version = ($("ft-version") as HTMLInputElement).value.trim();
    const out = $("ft-published");
    try {
      const files = (await sdk.modelToFiles(trained.model)).map((f) => ({
        path: f.path,
        bytes: f.bytes,
      }));
      files.push({
        path: "README.md",
        bytes: new TextEncoder().encode(sdk.cardReadme(name, trained.card)),
      });
      const href = await publishFiles(name, version, session.auth(), files, trained.card);
      const a = document.createElement("a");
      a.href = href;
      a.id = "ft-published-link";
      a.textContent = `${name}@${version}`;
      out.replaceChildren("Published ", a, ".");
      root.dataset.state = "published";
    } catch (err) {
      out.textContent = `Cannot publish "${name}@${version}": ${message(err)}`;
    }
  });

  $("ft-download").addEventListener("click", async () => {
    if (!trained) return;
    const files = await sdk.modelToFiles(trained.model);
    const all = [
      ...files,
      { path: "card.json", bytes: new TextEncoder().encode(JSON.stringify(trained.card, null, 2)) },
    ];
    for (const f of all) {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([f.bytes as BlobPart]));
      a.download = f.path;
      a.click();
      URL.revokeObjectURL(a.href);
    }
  });
}

const data = document.getElementById("zoo-model");
if (data?.textContent) {
  const session = new PageSession(JSON.parse(data.textContent) as PageModel);
  setupTryIt(session);
  setupFineTune(session);
}
