/**
 * The model page: one version's card (its README rendered), card facts,
 * versions and tags, downloads, files, the architecture, and snippets that
 * load it with the SDK or stock TensorFlow.js.
 *
 * @module
 */
// hono/jsx writes a `key` prop out as an HTML attribute, and pages rendered once on the
// server never reconcile lists, so list items carry no key.
// deno-lint-ignore-file jsx-key
import { raw } from "hono/html";
import { compareSemver, parseRef } from "../../core/names.ts";
import type { ModelRecord, VersionRecord } from "../storage/store.ts";
import { count, day, isRecord, MISSING, plain, str } from "./_format.ts";
import { Layout } from "./_layout.tsx";
import { safeHref } from "./_markdown.ts";
import { ArchitectureSection } from "./architecture.tsx";

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
  if (isRecord(v)) return Object.entries(v).map(([k, x]) => `${k}: ${brief(x)}`).join("; ");
  return plain(v);
}

function CardFacts(props: { card: Record<string, unknown> }) {
  const { card } = props;
  const labels = Array.isArray(card.labels) ? card.labels.map((l) => plain(l)) : [];
  const more = Object.entries(card).filter(([k]) => !KNOWN_KEYS.has(k));
  return (
    <dl id="card-facts">
      <dt>Task</dt>
      <dd>{str(card.task) ?? <Missing />}</dd>
      <dt>Labels</dt>
      <dd>
        {labels.length === 0 ? <Missing /> : (
          <>
            {labels.slice(0, LABELS_SHOWN).join(", ")}
            {labels.length > LABELS_SHOWN
              ? <span class="muted">{` +${labels.length - LABELS_SHOWN} more`}</span>
              : ""}
            <span class="muted">{` (${labels.length})`}</span>
          </>
        )}
      </dd>
      <dt>Dataset</dt>
      <dd>
        <Dataset card={card} />
      </dd>
      <dt>License</dt>
      <dd>{str(card.license) ?? <Missing />}</dd>
      <dt>Source</dt>
      <dd>
        <SourceLink source={card.source} />
      </dd>
      <dt>Preprocessing</dt>
      <dd>
        <KeyValues value={card.preprocessing} />
      </dd>
      <dt>Metrics</dt>
      <dd>
        <KeyValues value={card.metrics} />
      </dd>
      <dt>Parent</dt>
      <dd>
        <ParentLink parent={card.parent} />
      </dd>
      {more.map(([k, v]) => (
        <>
          <dt>{k}</dt>
          <dd>{brief(v)}</dd>
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
  return (
    <Layout title={`${id}@${v.version}`}>
      <p class="muted small">
        <a href="/">Models</a> / {model.namespace} / <a href={`/${id}`}>{model.name}</a>
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
          <Files version={v} />
          <p class="muted small">
            Published {day(v.createdAt)}
            {v.publishedBy ? ` by ${v.publishedBy}` : ""} · <a href={`/api/models/${id}`}>JSON</a>
          </p>
        </aside>
      </div>
      <Snippets origin={origin} version={v} />
      <ArchitectureSection architecture={isRecord(v.architecture) ? v.architecture : {}} />
    </Layout>
  );
}
