/**
 * Markdown of model cards to HTML. Cards are user content, so raw HTML in the
 * Markdown is shown as text, and links and images keep only destinations that
 * cannot run script (`http:`, `https:`, `mailto:`, relative ones).
 *
 * @module
 */
import { Marked, type Tokens } from "marked";

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

const marked = new Marked({
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
});

/**
 * Renders a model card's Markdown (GitHub flavoured) to HTML that is safe to
 * embed: raw HTML is escaped and unsafe link and image destinations dropped.
 *
 * @param markdown the card's Markdown, e.g. a version's `README.md`
 * @returns HTML
 *
 * @example Raw HTML is shown, not run
 * ```ts
 * import { renderMarkdown } from "./_markdown.ts";
 * renderMarkdown("# LeNet\n<script>alert(1)</script>");
 * // "<h1>LeNet</h1>\n<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
 * ```
 */
export function renderMarkdown(markdown: string): string {
  return marked.parse(markdown, { async: false });
}
