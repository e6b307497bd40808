/**
 * The index page: search, task filter, sort, and a table of models with
 * cursor pagination.
 *
 * @module
 */
// hono/jsx writes a `key` prop out as an HTML attribute, and pages rendered once on the
// server never reconcile lists, so list items carry no key.
// deno-lint-ignore-file jsx-key
import { resolveRef } from "../resolve.ts";
import type { ModelRecord } from "../storage/store.ts";
import { count, day, MISSING, truncate } from "./_format.ts";
import { Layout } from "./_layout.tsx";

/** The query an index page shows. */
export interface IndexQuery {
  /** Search text, empty for none. */
  search: string;
  /** Exact task, empty for any. */
  task: string;
  /** Sort order. */
  sort: "downloads" | "updated";
  /** The cursor of this page, empty on the first. */
  cursor: string;
}

/** Props of {@linkcode IndexPage}. */
export interface IndexPageProps {
  /** What was asked. */
  query: IndexQuery;
  /** The models of this page. */
  items: ModelRecord[];
  /** The cursor of the next page; null on the last. */
  nextCursor: string | null;
  /** Tasks to offer in the filter, sorted. */
  tasks: string[];
  /** A problem with the query to show above the table (e.g. a stale cursor). */
  notice?: string;
}

/** Labels shown in a table cell before "+N more". */
const LABELS_SHOWN = 4;

/**
 * A link to the index with a query; empty values are left out.
 *
 * @param q the query
 * @returns a path such as `/?search=mnist&sort=downloads`
 */
export function indexHref(q: Partial<IndexQuery>): string {
  const params = new URLSearchParams();
  for (const key of ["search", "task", "sort", "cursor"] as const) {
    const value = q[key];
    if (value) params.set(key, value);
  }
  const s = params.toString();
  return s ? `/?${s}` : "/";
}

function Labels(props: { labels: string[] }) {
  const { labels } = props;
  if (labels.length === 0) return <span class="muted">{MISSING}</span>;
  const shown = labels.slice(0, LABELS_SHOWN).map((l) => truncate(l, 24)).join(", ");
  const rest = labels.length - LABELS_SHOWN;
  return (
    <span title={truncate(labels.join(", "), 400)}>
      {shown}
      {rest > 0 ? <span class="muted">{` +${rest} more`}</span> : ""}
    </span>
  );
}

function ModelRow(props: { model: ModelRecord }) {
  const m = props.model;
  const id = `${m.namespace}/${m.name}`;
  const latest = resolveRef(m, "latest");
  return (
    <tr>
      <td>
        <a href={`/${id}`}>
          <strong>{id}</strong>
        </a>
      </td>
      <td>{m.task || <span class="muted">{MISSING}</span>}</td>
      <td>{m.description ? truncate(m.description, 140) : <span class="muted">{MISSING}</span>}</td>
      <td>
        <Labels labels={m.labels} />
      </td>
      <td>
        {"version" in latest
          ? <a href={`/${id}/${latest.version}`}>{latest.version}</a>
          : <span class="badge warn">all yanked</span>}
      </td>
      <td class="num">{count(m.downloads)}</td>
      <td class="num">
        <time datetime={m.updatedAt}>{day(m.updatedAt)}</time>
      </td>
    </tr>
  );
}

/**
 * The index page.
 *
 * @param props the query, its page of models, the tasks to filter by
 * @returns the document
 */
export function IndexPage(props: IndexPageProps) {
  const { query, items, nextCursor, tasks } = props;
  const filtered = query.search !== "" || query.task !== "";
  return (
    <Layout title={query.search ? `Search: ${query.search}` : "Models"}>
      <h1>Models</h1>
      <p class="muted">
        Pretrained TensorFlow.js checkpoints to fine-tune or use as feature extractors.
      </p>
      <form class="search" method="get" action="/" role="search">
        <input
          type="search"
          name="search"
          value={query.search}
          placeholder="Search names, descriptions, tasks, labels"
          aria-label="Search models"
          maxlength={200}
        />
        <select name="task" aria-label="Task">
          <option value="" selected={query.task === ""}>All tasks</option>
          {tasks.map((t) => <option value={t} selected={t === query.task}>{t}</option>)}
        </select>
        <select name="sort" aria-label="Sort by">
          <option value="updated" selected={query.sort === "updated"}>Recently updated</option>
          <option value="downloads" selected={query.sort === "downloads"}>Most downloaded</option>
        </select>
        <button type="submit">Search</button>
      </form>
      {props.notice ? <p class="notice">{props.notice}</p> : ""}
      {items.length === 0
        ? (
          <p class="empty">
            {filtered
              ? (
                <>
                  No model matches this search. <a href="/">Show all models</a>.
                </>
              )
              : (
                <>
                  No model has been published yet: publish one with <code>deno task publish</code>.
                </>
              )}
          </p>
        )
        : (
          <div class="scroll">
            <table id="models">
              <thead>
                <tr>
                  <th>Model</th>
                  <th>Task</th>
                  <th>Description</th>
                  <th>Labels</th>
                  <th>Latest</th>
                  <th class="num">Downloads</th>
                  <th class="num">Updated</th>
                </tr>
              </thead>
              <tbody>
                {items.map((m) => <ModelRow model={m} />)}
              </tbody>
            </table>
          </div>
        )}
      <nav class="pager" aria-label="Pages">
        {query.cursor ? <a href={indexHref({ ...query, cursor: "" })}>First page</a> : ""}
        {nextCursor
          ? <a href={indexHref({ ...query, cursor: nextCursor })} rel="next">Next</a>
          : ""}
      </nav>
    </Layout>
  );
}
