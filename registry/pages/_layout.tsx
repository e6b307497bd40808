/**
 * The frame every page shares: head, inline stylesheet, favicon, header,
 * footer, and the page's script when it has one (always the registry's own,
 * from `/assets/`). Nothing loads from elsewhere.
 *
 * @module
 */
import type { Child } from "hono/jsx";
import { raw } from "hono/html";

/**
 * The Content-Security-Policy of every page: scripts only from the registry
 * itself (no inline script, so card HTML that slipped past the Markdown
 * renderer could not run), WebAssembly compiled from those (tfjs's wasm
 * backend), fetches only to the registry, images also from the user's own
 * files (`blob:`) for the widgets.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "connect-src 'self'",
  "style-src 'unsafe-inline'",
  "img-src 'self' https: data: blob:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const STYLE = `
:root{--fg:#1d2330;--muted:#5b6475;--line:#e3e6ec;--bg:#fff;--soft:#f6f7f9;--accent:#2857c5;--warn:#a4411a;--ok:#1c7a4a}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header.top{border-bottom:1px solid var(--line);background:var(--soft)}
header.top .wrap{display:flex;gap:1rem;align-items:center;padding:.7rem 1.25rem}
header.top .brand{font-weight:700;color:var(--fg);font-size:1.05rem}
header.top nav{margin-left:auto;display:flex;gap:1rem;font-size:.9rem}
.wrap{max-width:1180px;margin:0 auto;padding:1.25rem}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}h2{font-size:1.2rem;margin:1.6rem 0 .6rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.muted{color:var(--muted)}.small{font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--soft);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.cut td{background:#f1f6ff}tr.feature td{background:#e4edff}tr.inner td:first-child{padding-left:1.6rem}
.scroll{overflow-x:auto}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.7rem .9rem;overflow-x:auto;white-space:pre}
:not(pre)>code{background:var(--soft);padding:.05rem .3rem;border-radius:4px}
.badge{display:inline-block;font-size:.75rem;line-height:1.4;padding:0 .45rem;border-radius:999px;border:1px solid var(--line);background:var(--soft);color:var(--muted);white-space:nowrap}
.badge.warn{color:var(--warn);border-color:#f0c9b5;background:#fff4ee}.badge.ok{color:var(--ok);border-color:#b8e0c9;background:#effaf3}
code+.badge,strong+.badge{margin-left:.35rem}
.badge.cut{color:var(--accent);border-color:#c4d3f3;background:#eef3fd}
form.search{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 1rem}
form.search input[type=search]{flex:1 1 18rem;padding:.45rem .6rem;border:1px solid #c9ced8;border-radius:6px;font:inherit}
form.search select,form.search button{padding:.45rem .6rem;border:1px solid #c9ced8;border-radius:6px;font:inherit;background:#fff}
form.search button{background:var(--accent);border-color:var(--accent);color:#fff;cursor:pointer}
.pager{display:flex;gap:1rem;justify-content:flex-end;margin-top:.8rem}
.grid{display:grid;grid-template-columns:minmax(0,1fr) 320px;gap:2rem}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
aside dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem .8rem;margin:0;font-size:.9rem}
aside dt{color:var(--muted)}aside dd{margin:0;overflow-wrap:anywhere}
aside ul{margin:0;padding-left:1.1rem;font-size:.9rem}
.card{overflow-wrap:break-word;min-width:0}.card img{max-width:100%}
.card table{width:auto;display:block;overflow-x:auto;max-width:100%}
.card pre{max-width:100%}
dl.arch-facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.5rem 1rem;margin:0 0 1rem}
dl.arch-facts div{border:1px solid var(--line);border-radius:6px;padding:.4rem .6rem;background:var(--soft)}
dl.arch-facts dt{color:var(--muted);font-size:.8rem}dl.arch-facts dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
#layer-table td:first-child{white-space:nowrap}
code.digest{font-size:12px;overflow-wrap:anywhere}
#card-json{max-height:32rem;overflow:auto}
.widget .try{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1.5rem;align-items:start}
@media (max-width:900px){.widget .try{grid-template-columns:1fr}}
.drop{display:block;border:2px dashed #c9ced8;border-radius:8px;padding:1rem;text-align:center;color:var(--muted);cursor:pointer}
.drop.over{border-color:var(--accent);background:#eef3fd}
.draw{margin-top:.8rem;display:flex;gap:.6rem;align-items:flex-end}
#try-canvas{width:196px;height:196px;background:#000;border-radius:6px;touch-action:none;cursor:crosshair}
#try-preview{display:block;width:112px;height:auto;margin-top:.8rem;image-rendering:pixelated;border-radius:4px}
ol.bars{list-style:none;padding:0;margin:0}
ol.bars li{display:grid;grid-template-columns:8rem 1fr 4.5rem;gap:.5rem;align-items:center;margin:.25rem 0;font-size:.9rem}
ol.bars .bar{height:.8rem;background:var(--accent);border-radius:3px;min-width:1px}
ol.bars li:first-child .bar{background:var(--ok)}
ol.bars .p{text-align:right;font-variant-numeric:tabular-nums}
.ft-class{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem;margin:.4rem 0}
.ft-class input[type=text]{padding:.3rem .5rem;border:1px solid #c9ced8;border-radius:5px;font:inherit}
.ft-class .thumbs img{width:28px;height:28px;object-fit:cover;margin-right:2px;border-radius:3px}
.widget button{padding:.4rem .8rem;border:1px solid #c9ced8;border-radius:6px;font:inherit;background:#fff;cursor:pointer}
.widget button.primary,.widget button[type=submit]{background:var(--accent);border-color:var(--accent);color:#fff}
.widget button:disabled{opacity:.5;cursor:default}
#ft-curve{width:100%;max-width:480px;border:1px solid var(--line);border-radius:6px}
form.publish{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1rem}
form.publish input{padding:.4rem .6rem;border:1px solid #c9ced8;border-radius:6px;font:inherit}
.notice{border:1px solid #f0c9b5;background:#fff4ee;border-radius:6px;padding:.6rem .9rem;margin:.6rem 0}
.empty{padding:2rem;text-align:center;color:var(--muted);border:1px dashed var(--line);border-radius:6px}
footer{border-top:1px solid var(--line);margin-top:2rem;color:var(--muted);font-size:.85rem}
`;

/** Props of {@linkcode Layout}. */
export interface LayoutProps {
  /** The page title, before " · Model zoo". */
  title: string;
  /** The page body. */
  children?: Child;
  /** The path of the page's script module under `/assets/`, if it has one. */
  script?: string;
}

/**
 * A whole HTML document around a page's body.
 *
 * @param props title and body
 * @returns the document
 */
export function Layout(props: LayoutProps) {
  return (
    <>
      {raw("<!DOCTYPE html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{props.title} · Model zoo</title>
          <link rel="icon" href="/favicon.ico" sizes="32x32" />
          <style>{raw(STYLE)}</style>
          {props.script ? <script type="module" src={props.script}></script> : ""}
        </head>
        <body>
          <header class="top">
            <div class="wrap">
              <a class="brand" href="/">Model zoo</a>
              <nav>
                <a href="/">Models</a>
                <a href="/openapi.json">API</a>
              </nav>
            </div>
          </header>
          <main class="wrap">{props.children}</main>
          <footer>
            <div class="wrap">
              TensorFlow.js checkpoints, versioned and content-addressed. The JSON API is under{" "}
              <code>/api</code>; see <a href="/openapi.json">openapi.json</a>.
            </div>
          </footer>
        </body>
      </html>
    </>
  );
}
