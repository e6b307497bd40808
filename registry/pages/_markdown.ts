/**
 * Markdown of model cards to HTML. Cards are user content, so raw HTML in the
 * Markdown is shown as text, and links and images keep only destinations that
 * cannot run script (`http:`, `https:`, `mailto:`, relative ones).
 *
 * References such as `zoo/lenet5@1.0.0` or `mnist@1.1.0` are recognized before
 * GitHub-flavoured autolinking would turn them into `mailto:` links: the page
 * decides where each one leads (a model page, a dataset's package page) or
 * leaves it as text.
 *
 * @module
 */
import {
  Marked,
  type MarkedExtension,
  type Token,
  type TokenizerAndRendererExtension,
  type Tokens,
} from "marked";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML content and quoted attribute values; every `&` is
 * escaped, so an entity in the input stays literal text.
 *
 * @param text any text
 * @returns the text, safe between tags and inside `"…"`
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ESCAPES[ch] ?? ch);
}

const SAFE_SCHEMES = new Set(["http:", "https:", "mailto:"]);

/**
 * The destination a card may link to, or null when it could run script or
 * reach an unexpected scheme (`javascript:`, `data:`, `vbscript:`, …).
 *
 * @param href a link or image destination from the Markdown
 * @returns the destination to emit, or null
 */
export function safeHref(href: string): string | null {
  // Browsers drop tabs and newlines inside URLs and trim control characters
  // and spaces, so "java\tscript:" must be judged as "javascript:".
  // deno-lint-ignore no-control-regex
  const url = href.replace(/[\u0000-\u0020\u007f]/g, "");
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url);
  if (scheme) return SAFE_SCHEMES.has(`${scheme[1]!.toLowerCase()}:`) ? url : null;
  // A colon before the first "/", "?" or "#" would be read as a scheme by some parsers.
  const head = url.split(/[/?#]/, 1)[0] ?? "";
  if (head.includes(":") || head.includes("&")) return null;
  return url;
}

function titleAttr(title: string | null | undefined): string {
  return title ? ` title="${escapeHtml(title)}"` : "";
}

/**
 * A model or package reference in card text: `name@1.2.3` or `namespace/name@1.2.3`,
 * not inside a longer word or an e-mail address.
 */
const REF_SOURCE =
  "(?:[a-z0-9][a-z0-9._-]*\\/)?[a-z0-9][a-z0-9_-]*(?:\\.[a-z0-9_-]+)*@\\d+\\.\\d+\\.\\d+(?:-[0-9a-z.-]+)?";
const REF_AT_START = new RegExp(`^${REF_SOURCE}(?![\\w@/-]|\\.\\w)`, "i");
const REF_ANYWHERE = new RegExp(`(?<![\\w@./-])${REF_SOURCE}(?![\\w@/-]|\\.\\w)`, "gi");

/**
 * Every `name@version` reference in a card's Markdown, in order, without repeats,
 * so that a page can look them up before rendering.
 *
 * @param markdown the card's Markdown
 * @returns the references as written, e.g. `["zoo/lenet5@1.0.0", "mnist@1.1.0"]`
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { findReferences } from "./_markdown.ts";
 * assertEquals(findReferences("From zoo/lenet5@1.0.0 on mnist@1.1.0; ask a@b.org"), [
 *   "zoo/lenet5@1.0.0",
 *   "mnist@1.1.0",
 * ]);
 * ```
 */
export function findReferences(markdown: string): string[] {
  return [...new Set(markdown.match(REF_ANYWHERE) ?? [])];
}

/** Options of {@linkcode renderMarkdown}. */
export interface RenderOptions {
  /**
   * Where a `name@version` reference links to, or null to show it as text.
   * Without it, references are text.
   */
  refHref?: (reference: string) => string | null;
  /** Top-level sections left out, by heading text (case-insensitive), with their subsections. */
  dropSections?: readonly string[];
}

interface RefToken extends Tokens.Generic {
  type: "modelRef";
  raw: string;
  href: string | null;
}

function refExtension(
  resolve: (reference: string) => string | null,
): TokenizerAndRendererExtension {
  return {
    name: "modelRef",
    level: "inline",
    start(src: string): number | undefined {
      REF_ANYWHERE.lastIndex = 0;
      const m = REF_ANYWHERE.exec(src);
      return m ? m.index : undefined;
    },
    tokenizer(src: string): RefToken | undefined {
      const m = REF_AT_START.exec(src);
      if (!m) return undefined;
      return { type: "modelRef", raw: m[0], href: resolve(m[0]) };
    },
    renderer(token: Tokens.Generic): string {
      const t = token as RefToken;
      const href = t.href === null ? null : safeHref(t.href);
      if (href === null) return escapeHtml(t.raw);
      const rel = /^https?:/i.test(href) ? ' rel="nofollow ugc noopener"' : "";
      return `<a href="${escapeHtml(href)}" class="ref"${rel}>${escapeHtml(t.raw)}</a>`;
    },
  };
}

/** Drops the top-level sections whose heading text is in `names`, with what they hold. */
function dropSections(tokens: Token[], names: readonly string[]): Token[] {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const kept: Token[] = [];
  let skipDepth = 0;
  for (const t of tokens) {
    if (t.type === "heading") {
      const h = t as Tokens.Heading;
      if (skipDepth > 0 && h.depth <= skipDepth) skipDepth = 0;
      if (skipDepth === 0 && wanted.has(h.text.trim().toLowerCase())) skipDepth = h.depth;
    }
    if (skipDepth === 0) kept.push(t);
  }
  return kept;
}

const OPTIONS: MarkedExtension = {
  gfm: true,
  async: false,
  renderer: {
    html(token: Tokens.HTML | Tokens.Tag): string {
      const text = escapeHtml(token.text);
      return "block" in token && token.block ? `<p>${text}</p>\n` : text;
    },
    link(token: Tokens.Link): string {
      const text = this.parser.parseInline(token.tokens);
      const href = safeHref(token.href);
      if (href === null) return text;
      return `<a href="${escapeHtml(href)}"${
        titleAttr(token.title)
      } rel="nofollow ugc noopener">${text}</a>`;
    },
    image(token: Tokens.Image): string {
      const href = safeHref(token.href);
      if (href === null || href.startsWith("mailto:")) return escapeHtml(token.text);
      return `<img src="${escapeHtml(href)}" alt="${escapeHtml(token.text)}"${
        titleAttr(token.title)
      } loading="lazy">`;
    },
  },
};

const plainMarked = new Marked(OPTIONS, { extensions: [refExtension(() => null)] });

/**
 * Renders a model card's Markdown (GitHub flavoured) to HTML that is safe to
 * embed: raw HTML is escaped and unsafe link and image destinations dropped.
 *
 * @param markdown the card's Markdown, e.g. a version's `README.md`
 * @param options where references link to and which sections to leave out
 * @returns HTML
 *
 * @example Raw HTML is shown, not run
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { renderMarkdown } from "./_markdown.ts";
 * assertEquals(
 *   renderMarkdown("# LeNet\n<script>alert(1)</script>"),
 *   "<h1>LeNet</h1>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n",
 * );
 * ```
 *
 * @example A reference links to its page, not to an e-mail address
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { renderMarkdown } from "./_markdown.ts";
 * const html = renderMarkdown("Fine-tuned from zoo/lenet5@1.0.0.", {
 *   refHref: (ref) => ref === "zoo/lenet5@1.0.0" ? "/zoo/lenet5/1.0.0" : null,
 * });
 * assertEquals(
 *   html,
 *   '<p>Fine-tuned from <a href="/zoo/lenet5/1.0.0" class="ref">zoo/lenet5@1.0.0</a>.</p>\n',
 * );
 * ```
 */
export function renderMarkdown(markdown: string, options: RenderOptions = {}): string {
  const md = options.refHref
    ? new Marked(OPTIONS, { extensions: [refExtension(options.refHref)] })
    : plainMarked;
  const tokens = md.lexer(markdown);
  const kept = options.dropSections?.length ? dropSections(tokens, options.dropSections) : tokens;
  return md.parser(kept);
}
