/**
 * The model page and a version's page. Both show one version's card (its
 * README rendered), card facts, versions and tags, downloads, the
 * architecture, and snippets that load it with the SDK or stock
 * TensorFlow.js. The model page (`latest`) adds the model's fine-tunes and,
 * for image classifiers, the "Try it" and "Fine-tune here" widgets that the
 * registry's own script (`web/zoo.ts`, bundled) brings to life; a version's
 * page adds that version's files with their digests and its whole card as JSON.
 *
 * @module
 */
// hono/jsx writes a `key` prop out as an HTML attribute, and pages rendered once on the
// server never reconcile lists, so list items carry no key.
// deno-lint-ignore-file jsx-key
import type { Child } from "hono/jsx";
import { raw } from "hono/html";
import { compareSemver, parseRef } from "../../core/names.ts";
import type { ModelRecord, VersionRecord } from "../storage/store.ts";
import { count, day, isRecord, MISSING, plain, str } from "./_format.ts";
import { Layout } from "./_layout.tsx";
import { safeHref } from "./_markdown.ts";
import { ArchitectureSection } from "./architecture.tsx";
import { assetManifest, assetPath } from "../routes/assets.ts";

/** A model fine-tuned from the one shown, found by its card's `parent`. */
export interface FineTune {
  /** `namespace/name@version` of its newest version. */
  reference: string;
  /** Its model page. */
  href: string;
  /** The version of this model it names as parent. */
  parentVersion: string;
  /** Its card's description. */
  description: string;
}

/** Props of {@linkcode ModelPage}. */
export interface ModelPageProps {
  /** The model with all its versions and tags. */
  model: ModelRecord;
  /** The version shown. */
  version: VersionRecord;
  /** The version or tag in the path; null on the model page (`latest`). */
  requested: string | null;
  /** The version's README.md rendered to safe HTML; null when it has none. */
  readmeHtml: string | null;
  /** Why the shown version is not what was asked for, if it is not. */
  notice?: string;
  /** The registry's origin as the client reached it, e.g. `http://localhost:8000`. */
  origin: string;
  /** The models fine-tuned from this one (on the model page). */
  fineTunes?: FineTune[];
}

/** Card keys shown as facts; any other key is listed under "More". */
const KNOWN_KEYS = new Set([
  "task",
  "labels",
  "dataset",
  "datasetSize",
  "license",
  "source",
  "preprocessing",
  "metrics",
  "parent",
  "description",
  "name",
  "title",
]);

/** Labels listed in the facts before "+N more". */
const LABELS_SHOWN = 30;

function Missing() {
  return <span class="muted">{MISSING}</span>;
}

function ParentLink(props: { parent: unknown }) {
  const parent = str(props.parent);
  if (!parent) return <Missing />;
  try {
    const r = parseRef(parent);
    const path = r.ref === "latest"
      ? `/${r.namespace}/${r.name}`
      : `/${r.namespace}/${r.name}/${r.ref}`;
    return (
      <a href={path}>
        <code>{parent}</code>
      </a>
    );
  } catch {
    return <code>{parent}</code>;
  }
}

function SourceLink(props: { source: unknown }) {
  const source = str(props.source);
  if (!source) return <Missing />;
  const href = safeHref(source);
  if (href && /^https?:/i.test(href)) {
    return <a href={href} rel="nofollow ugc noopener">{source}</a>;
  }
  return <>{source}</>;
}

function Dataset(props: { card: Record<string, unknown> }) {
  const d = props.card.dataset;
  const size = props.card.datasetSize;
  if (d === undefined && size === undefined) return <Missing />;
  if (isRecord(d)) {
    const name = str(d.name) ?? str(d.id);
    const rest = Object.fromEntries(Object.entries(d).filter(([k]) => k !== "name" && k !== "id"));
    return (
      <>
        {name ?? ""}
        {Object.keys(rest).length > 0 ? <span class="muted">{` (${plain(rest)})`}</span> : ""}
      </>
    );
  }
  return (
    <>
      {d === undefined ? "" : plain(d)}
      {size === undefined ? "" : (
        <span class="muted">
          {` (${typeof size === "number" ? count(size) : plain(size)} examples)`}
        </span>
      )}
    </>
  );
}

function KeyValues(props: { value: unknown }) {
  const v = props.value;
  if (v === undefined || v === null) return <Missing />;
  if (isRecord(v)) {
    return (
      <ul>
        {Object.entries(v).map(([k, x]) => (
          <li>
            {k}: <code>{Array.isArray(x) ? `[${plain(x)}]` : plain(x)}</code>
          </li>
        ))}
      </ul>
    );
  }
  if (Array.isArray(v)) {
    return (
      <ul>
        {v.map((x) => {
          if (!isRecord(x)) return <li>{plain(x)}</li>;
          const name = str(x.name) ?? str(x.metric);
          const rest = Object.fromEntries(
            Object.entries(x).filter(([k]) => !["name", "metric", "value"].includes(k)),
          );
          if (!name) return <li>{plain(x)}</li>;
          const value = x.value === undefined ? "" : ` ${plain(x.value)}`;
          const more = Object.keys(rest).length > 0 ? ` (${plain(Object.values(rest))})` : "";
          return <li>{`${name}${value}${more}`}</li>;
        })}
      </ul>
    );
  }
  return <>{plain(v)}</>;
}

/** A card value short enough for the sidebar: long arrays (code statistics) become their length. */
function brief(v: unknown): string {
  if (Array.isArray(v) && v.length > 8) return `[${v.length} values]`;
  if (Array.isArray(v) && v.length > 2 && v.some(isRecord)) return `[${v.length} entries]`;
  if (isRecord(v)) return Object.entries(v).map(([k, x]) => `${k}: ${brief(x)}`).join("; ");
  return plain(v);
}

function CardFacts(props: { card: Record<string, unknown> }) {
  const { card } = props;
  const labels = Array.isArray(card.labels) ? card.labels.map((l) => plain(l)) : [];
  const more = Object.entries(card).filter(([k]) => !KNOWN_KEYS.has(k));
  const labelList: Child = labels.length === 0 ? <Missing /> : (
    <>
      {labels.slice(0, LABELS_SHOWN).join(", ")}
      {labels.length > LABELS_SHOWN
        ? <span class="muted">{` +${labels.length - LABELS_SHOWN} more`}</span>
        : ""}
      <span class="muted">{` (${labels.length})`}</span>
    </>
  );
  // One term and description per fact, the card's known keys first.
  const facts: [string, Child][] = [
    ["Task", str(card.task) ?? <Missing />],
    ["Labels", labelList],
    ["Dataset", <Dataset card={card} />],
    ["License", str(card.license) ?? <Missing />],
    ["Source", <SourceLink source={card.source} />],
    ["Preprocessing", <KeyValues value={card.preprocessing} />],
    ["Metrics", <KeyValues value={card.metrics} />],
    ["Parent", <ParentLink parent={card.parent} />],
    ...more.map(([k, v]): [string, Child] => [k, brief(v)]),
  ];
  return (
    <dl id="card-facts">
      {facts.map(([term, description]) => (
        <>
          <dt>{term}</dt>
          <dd>{description}</dd>
        </>
      ))}
    </dl>
  );
}

function Versions(props: { model: ModelRecord; current: string }) {
  const { model, current } = props;
  const id = `${model.namespace}/${model.name}`;
  const tagsOf = new Map<string, string[]>();
  for (const [tag, v] of Object.entries(model.tags)) {
    tagsOf.set(v, [...(tagsOf.get(v) ?? []), tag]);
  }
  const versions = [...model.versions].sort((a, b) => compareSemver(b.version, a.version));
  return (
    <ul id="versions">
      {versions.map((v) => (
        <li>
          {v.version === current
            ? <strong>{v.version}</strong>
            : <a href={`/${id}/${v.version}`}>{v.version}</a>}{" "}
          {v.yanked ? <span class="badge warn">yanked</span> : ""}
          {(tagsOf.get(v.version) ?? []).sort().map((t) => (
            <>
              {" "}
              <span class="badge ok">{t}</span>
            </>
          ))}
          <span class="muted small">{` ${day(v.createdAt)} · ${count(v.downloads)} ↓`}</span>
        </li>
      ))}
    </ul>
  );
}

function Tags(props: { model: ModelRecord }) {
  const { model } = props;
  const tags = Object.entries(model.tags).sort(([a], [b]) => a.localeCompare(b));
  if (tags.length === 0) return <p class="muted">No tags.</p>;
  return (
    <ul id="tags">
      {tags.map(([tag, version]) => (
        <li>
          <span class="badge ok">{tag}</span> →{" "}
          <a href={`/${model.namespace}/${model.name}/${version}`}>{version}</a>
        </li>
      ))}
    </ul>
  );
}

function Snippets(props: { origin: string; version: VersionRecord }) {
  const { origin, version: v } = props;
  const ref = `${v.namespace}/${v.name}@${v.version}`;
  const sdk = `import { ZooClient } from "@zoo/model-zoo";\n` +
    `const model = await new ZooClient({ url: ${JSON.stringify(origin)} }).loadModel(${
      JSON.stringify(ref)
    });`;
  const url = `${origin}/api/models/${v.namespace}/${v.name}/${v.version}/model.json`;
  const tfjs = `import * as tf from "@tensorflow/tfjs";\n` +
    `const model = await tf.loadLayersModel(${JSON.stringify(url)});`;
  return (
    <section id="use">
      <h2>Use it</h2>
      <h3>With the SDK (verified and cached)</h3>
      <pre id="snippet-sdk"><code>{sdk}</code></pre>
      <h3>With stock TensorFlow.js</h3>
      <pre id="snippet-tfjs"><code>{tfjs}</code></pre>
    </section>
  );
}

/** A version's files with their full digests, on the version page. */
function FileTable(props: { version: VersionRecord }) {
  return (
    <div class="scroll">
      <table id="file-table">
        <thead>
          <tr>
            <th>File</th>
            <th class="num">Bytes</th>
            <th>Digest (SHA-256)</th>
          </tr>
        </thead>
        <tbody>
          {props.version.files.map((f) => (
            <tr>
              <td>
                <a href={`/api/blobs/${f.digest}`}>
                  <code>{f.path}</code>
                </a>
              </td>
              <td class="num">{count(f.size)}</td>
              <td>
                <code class="digest">{f.digest}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function FineTunes(props: { items: FineTune[] }) {
  if (props.items.length === 0) {
    return <p class="muted" id="fine-tunes">No model in this registry names this one as parent.</p>;
  }
  return (
    <ul id="fine-tunes">
      {props.items.map((f) => (
        <li>
          <a href={f.href}>
            <code>{f.reference}</code>
          </a>
          <span class="muted small">{` from ${f.parentVersion}`}</span>
          {f.description ? <div class="small">{f.description}</div> : ""}
        </li>
      ))}
    </ul>
  );
}

/** What the page script needs about an image classifier, or null when the page is not for one. */
function widgetData(
  model: ModelRecord,
  v: VersionRecord,
): Record<string, unknown> | null {
  const card = isRecord(v.card) ? v.card : {};
  const arch = isRecord(v.architecture) ? v.architecture : {};
  const input = Array.isArray(arch.inputShape) ? arch.inputShape : [];
  const [, h, w, c] = input;
  if (card.task !== "image-classification" || input.length !== 4) return null;
  if (typeof h !== "number" || typeof w !== "number" || (c !== 1 && c !== 3)) return null;
  const modelJson = v.files.find((f) => f.path === "model.json");
  if (!modelJson) return null;
  const p = isRecord(card.preprocessing) ? card.preprocessing : {};
  const range = Array.isArray(p.range) && p.range.length === 2 ? p.range : [0, 1];
  const id = `${model.namespace}/${model.name}`;
  const layers = Array.isArray(arch.layers) ? arch.layers.filter(isRecord) : [];
  return {
    reference: `${id}@${v.version}`,
    modelUrl: `/api/models/${id}/${v.version}/model.json`,
    modelDigest: modelJson.digest,
    labels: Array.isArray(card.labels) ? card.labels.map((l) => plain(l)) : [],
    preprocessing: { ...p, height: h, width: w, channels: c, range },
    cutPoints: Array.isArray(arch.cutPoints) ? arch.cutPoints : [],
    featureCut: str(arch.featureCut) ?? null,
    layers: layers.map((l) => ({ name: l.name, outputShape: l.outputShape })),
    sourceStats: isRecord(card.sourceStats) ? card.sourceStats : null,
    source: isRecord(card.dataset) ? str(card.dataset.name) ?? null : str(card.dataset) ?? null,
    draw: h === 28 && w === 28 && c === 1,
    publishName: `me/${model.name}-custom`,
    wasm: Object.fromEntries(
      Object.entries(assetManifest()).filter(([k]) => k.endsWith(".wasm")).map((
        [k, file],
      ) => [k, `/assets/${file}`]),
    ),
  };
}

/** JSON for a `<script type="application/json">`: `<` escaped so no tag can close it early. */
function scriptJson(data: unknown): string {
  return JSON.stringify(data).replace(/</g, "\\u003c");
}

function TryIt(props: { draw: boolean }) {
  return (
    <section id="try-it" class="widget" data-state="loading">
      <h2>Try it</h2>
      <p class="muted small">
        The model runs in this browser: pick or drop an image
        {props.draw ? ", or draw on the canvas" : ""}. It is preprocessed as the card says.
      </p>
      <div class="try">
        <div class="inputs">
          <label class="drop" id="try-drop">
            Drop an image here or choose one{" "}
            <input type="file" id="try-file" accept="image/png,image/jpeg,image/webp,image/gif" />
          </label>
          {props.draw
            ? (
              <div class="draw">
                <canvas id="try-canvas" width="280" height="280" aria-label="Draw a digit"></canvas>
                <button type="button" id="try-clear">Clear</button>
              </div>
            )
            : ""}
          <img id="try-preview" alt="" hidden />
        </div>
        <div class="outputs">
          <ol id="try-results" class="bars"></ol>
          <p class="muted small" id="try-status">Loading the model…</p>
        </div>
      </div>
    </section>
  );
}

function FineTuneHere() {
  return (
    <section id="fine-tune" class="widget" data-state="idle">
      <h2>Fine-tune here</h2>
      <p class="muted small">
        Name two or more classes and add images to each. The page computes the checkpoint's codes at
        the advisor's cut point, trains a softmax head on them in this browser, and can publish the
        result to this registry or save it as files.
      </p>
      <div id="ft-classes"></div>
      <p>
        <button type="button" id="ft-add-class">Add a class</button>{" "}
        <button type="button" id="ft-train" class="primary">Train</button>
      </p>
      <p class="small" id="ft-status"></p>
      <div class="try">
        <canvas id="ft-curve" width="480" height="200" aria-label="Loss and accuracy per epoch">
        </canvas>
        <div class="outputs">
          <p>
            Validation accuracy: <output id="ft-val">—</output>
          </p>
          <label class="drop">
            Try the new model <input type="file" id="ft-try-file" accept="image/*" disabled />
          </label>
          <ol id="ft-results" class="bars"></ol>
        </div>
      </div>
      <form id="ft-publish" class="publish">
        <input name="name" id="ft-name" placeholder="namespace/name" required />
        <input name="version" id="ft-version" value="1.0.0" required />
        <input
          name="token"
          id="ft-token"
          type="password"
          autocomplete="off"
          placeholder="token (read, publish:namespace)"
          aria-label="Token: read on a private registry, publish:namespace to publish; kept in this tab"
        />
        <button type="submit" id="ft-publish-button" disabled>Publish</button>
        <button type="button" id="ft-download" disabled>Download files</button>
      </form>
      <p class="small" id="ft-published"></p>
    </section>
  );
}

function Files(props: { version: VersionRecord }) {
  return (
    <ul id="files">
      {props.version.files.map((f) => (
        <li>
          <a href={`/api/blobs/${f.digest}`}>
            <code>{f.path}</code>
          </a>
          <span class="muted small">{` ${count(f.size)} bytes`}</span>
        </li>
      ))}
    </ul>
  );
}

/** Long number arrays (code statistics) shown as their length and first values; the JSON link has them whole. */
function cardReplacer(_key: string, value: unknown): unknown {
  if (Array.isArray(value) && value.length > 8 && value.every((x) => typeof x === "number")) {
    return `[${value.length} numbers: ${value.slice(0, 4).join(", ")}, …]`;
  }
  return value;
}

/**
 * The page of one version of a model.
 *
 * @param props the model, the version and its rendered card
 * @returns the document
 */
export function ModelPage(props: ModelPageProps) {
  const { model, version: v, origin } = props;
  const id = `${model.namespace}/${model.name}`;
  const card = isRecord(v.card) ? v.card : {};
  const description = str(card.description) ?? model.description;
  const viaTag = props.requested !== null && props.requested !== v.version;
  const versionPage = props.requested !== null;
  const widget = versionPage ? null : widgetData(model, v);
  const script = widget ? assetPath("zoo.js") : null;
  return (
    <Layout title={`${id}@${v.version}`} {...(script ? { script } : {})}>
      <p class="muted small">
        <a href="/">Models</a> / {model.namespace} / <a href={`/${id}`}>{model.name}</a>
        {versionPage ? <>{" / "}{v.version}</> : ""}
      </p>
      <h1>
        {id} <span class="muted">{v.version}</span>{" "}
        {v.yanked ? <span class="badge warn">yanked</span> : ""}
      </h1>
      {description && props.readmeHtml !== null ? <p>{description}</p> : ""}
      {viaTag
        ? (
          <p class="muted small">
            <code>{props.requested}</code> resolves to <code>{v.version}</code>.
          </p>
        )
        : ""}
      {v.yanked
        ? (
          <p class="notice">
            This version is yanked: it stays downloadable by its exact version but tags and{" "}
            <code>latest</code> skip it.
          </p>
        )
        : ""}
      {props.notice ? <p class="notice">{props.notice}</p> : ""}
      <div class="grid">
        <div>
          <section id="card" class="card">
            {props.readmeHtml !== null
              ? raw(props.readmeHtml)
              : description
              ? <p>{description}</p>
              : <p class="muted">This version has no model card (README.md).</p>}
          </section>
        </div>
        <aside>
          <h2>Card</h2>
          <CardFacts card={card} />
          <h2>Downloads</h2>
          <p>
            <strong>{count(v.downloads)}</strong> of this version,{" "}
            <strong>{count(model.downloads)}</strong> of all versions
          </p>
          <h2>Versions</h2>
          <Versions model={model} current={v.version} />
          <h2>Tags</h2>
          <Tags model={model} />
          <h2>Files</h2>
          {versionPage ? <p class="small">Listed with their digests below the card.</p> : (
            <>
              <Files version={v} />
              <p class="small">
                Digests and this version's card: <a href={`/${id}/${v.version}`}>{v.version}</a>
              </p>
            </>
          )}
          <p class="muted small">
            Published {day(v.createdAt)}
            {v.publishedBy ? ` by ${v.publishedBy}` : ""} · <a href={`/api/models/${id}`}>JSON</a>
          </p>
        </aside>
      </div>
      {widget && script ? <TryIt draw={widget.draw === true} /> : ""}
      {widget && script ? <FineTuneHere /> : ""}
      {widget && script
        ? (
          <script type="application/json" id="zoo-model">
            {raw(scriptJson(widget))}
          </script>
        )
        : ""}
      {versionPage
        ? (
          <section id="version">
            <h2>Files of {v.version}</h2>
            <FileTable version={v} />
            <h2>Card of {v.version}</h2>
            <p class="muted small">
              Long lists of numbers are shortened here;{" "}
              <a href={`/api/models/${id}/${v.version}`}>the version's JSON</a> has them whole.
            </p>
            <pre id="card-json"><code>{JSON.stringify(card, cardReplacer, 2)}</code></pre>
          </section>
        )
        : (
          <section id="lineage">
            <h2>Fine-tunes</h2>
            <FineTunes items={props.fineTunes ?? []} />
          </section>
        )}
      <Snippets origin={origin} version={v} />
      <ArchitectureSection architecture={isRecord(v.architecture) ? v.architecture : {}} />
    </Layout>
  );
}
