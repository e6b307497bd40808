/**
 * What a fine-tuning run shows and leaves behind: a per-epoch progress bar
 * on stderr (cli-progress) when it is a terminal and plain lines otherwise,
 * `metrics.jsonl` (one {@linkcode EpochMetrics} per line), the training
 * curves as an SVG plot, and the final table.
 *
 * The plot is hand-written SVG: two small line charts need about a hundred
 * lines, while the npm chart libraries that render SVG without a DOM
 * (vega, chart.js with a canvas shim) would pull in megabytes and native
 * canvas bindings for it.
 *
 * @module
 */
import process from "node:process";
// cli-progress ships no types; the few members used are typed below.
import cliProgress from "cli-progress";
import type { EpochMetrics } from "./types.ts";
import { isTerminal } from "../_progress.ts";
import { formatDuration } from "../train/plan.ts";

/** Shows training progress. */
export interface EpochProgress {
  /** Reports images done so far in the current epoch and the last batch's loss. */
  batch(done: number, total: number, loss: number): void;
  /** Reports a finished epoch. */
  epoch(m: EpochMetrics): void;
  /** A resumed run starts after `completedEpochs`: the bar counts on from there. */
  resumeAt(completedEpochs: number): void;
  /** Stops showing progress (clears a bar). */
  stop(): void;
}

interface SingleBar {
  start(total: number, start: number, payload: Record<string, string>): void;
  update(value: number, payload: Record<string, string>): void;
  setTotal(total: number): void;
  stop(): void;
}

/** Options of {@linkcode createEpochProgress}. */
export interface EpochProgressOptions {
  /**
   * Show a bar: true always, false never (plain lines only).
   * @default {"only when stderr is a terminal"}
   */
  bar?: boolean;
  /** Epochs planned, for the "epoch 3/10" label. */
  epochs: number;
  /**
   * Where plain lines go.
   * @default {console.error}
   */
  log?: (line: string) => void;
  /**
   * Without a bar, a line inside an epoch at most this often, so a slow
   * epoch (a big checkpoint) shows it is moving and how long it has left.
   * @default 10
   */
  everySeconds?: number;
}

/**
 * Formats one epoch's metrics as a line for a log.
 *
 * @param m the epoch's metrics
 * @param epochs epochs planned, when known
 * @returns e.g. `epoch 2/5 (all): loss 0.4312, accuracy 85.1% | val loss 0.4401, val accuracy 84.0% | 512 img/s, 2.1 s`
 *
 * @example A finished epoch
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatEpoch } from "./report.ts";
 * const line = formatEpoch({
 *   epoch: 1, phase: "head", trainLoss: 0.5, trainAccuracy: 0.8, imagesPerSecond: 400, seconds: 2,
 * }, 3);
 * assertEquals(line, "epoch 1/3 (head): loss 0.5000, accuracy 80.0% | 400 img/s, 2.0 s");
 * ```
 */
export function formatEpoch(m: EpochMetrics, epochs?: number): string {
  const val = m.valLoss === undefined
    ? ""
    : ` | val loss ${m.valLoss.toFixed(4)}, val accuracy ${percent(m.valAccuracy)}`;
  return `epoch ${m.epoch}${epochs ? `/${epochs}` : ""} (${m.phase}): loss ${
    m.trainLoss.toFixed(4)
  }, accuracy ${percent(m.trainAccuracy)}${val} | ${
    m.imagesPerSecond >= 10 ? Math.round(m.imagesPerSecond) : m.imagesPerSecond.toFixed(1)
  } img/s, ${m.seconds.toFixed(1)} s`;
}

/**
 * A progress display for a training run: a cli-progress bar per epoch (loss,
 * accuracy of the last epoch, images/s, ETA) on stderr when it is a terminal,
 * else one plain line per finished epoch, and inside a long epoch a line
 * every `everySeconds` with the images done, the speed and the time left.
 *
 * @param options bar or lines, epochs planned, where lines go
 * @returns the display; feed it the trainers' `onBatch` and `onEpoch`
 *
 * @example Plain lines
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createEpochProgress } from "./report.ts";
 * const lines: string[] = [];
 * const progress = createEpochProgress({ bar: false, epochs: 1, log: (l) => lines.push(l) });
 * progress.batch(64, 128, 0.7);
 * progress.epoch({
 *   epoch: 1, phase: "all", trainLoss: 0.6, trainAccuracy: 0.7, imagesPerSecond: 300, seconds: 1,
 * });
 * progress.stop();
 * assertEquals(lines.length, 1);
 * ```
 */
export function createEpochProgress(options: EpochProgressOptions): EpochProgress {
  const log = options.log ?? ((line: string) => console.error(line));
  const showBar = options.bar ?? isTerminal();
  let bar: SingleBar | null = null;
  let epochStart = performance.now();
  let lastDone = Infinity;
  let epochNo = 1;
  let lastAccuracy = "–";
  let lastLine = performance.now();
  const every = (options.everySeconds ?? 10) * 1000;
  const payload = (done: number, loss: number) => {
    const seconds = (performance.now() - epochStart) / 1000;
    return {
      epochLabel: `epoch ${epochNo}/${options.epochs}`,
      loss: loss.toFixed(4),
      accuracy: lastAccuracy,
      ips: seconds > 0 ? String(Math.round(done / seconds)) : "–",
    };
  };
  return {
    batch(done, total, loss) {
      // A new epoch without epoch() (a features run's passes): restart the clock.
      if (done < lastDone && lastDone !== Infinity) {
        epochStart = lastLine = performance.now() - 1e-3;
      }
      lastDone = done;
      if (!showBar) {
        const now = performance.now();
        if (now - lastLine >= every && done < total) {
          lastLine = now;
          const rate = done / ((now - epochStart) / 1000);
          log(
            `epoch ${epochNo}/${options.epochs}: ${done}/${total} images, loss ${
              loss.toFixed(4)
            }, ${rate >= 10 ? Math.round(rate) : rate.toFixed(1)} img/s, about ${
              formatDuration((total - done) / rate)
            } left in this epoch`,
          );
        }
        return;
      }
      if (bar === null) {
        const Bar = (cliProgress as { SingleBar: new (o: object, p: object) => SingleBar })
          .SingleBar;
        bar = new Bar(
          {
            stream: process.stderr,
            format:
              "{epochLabel} [{bar}] {percentage}% | loss {loss} | accuracy {accuracy} | {ips} img/s | ETA {eta_formatted}",
            hideCursor: true,
            clearOnComplete: true,
            etaBuffer: 20,
          },
          (cliProgress as { Presets: { shades_classic: object } }).Presets.shades_classic,
        );
        bar.start(total, done, payload(done, loss));
      } else {
        bar.setTotal(total);
        bar.update(done, payload(done, loss));
      }
    },
    epoch(m) {
      if (bar !== null) {
        bar.stop();
        bar = null;
      }
      lastAccuracy = percent(m.trainAccuracy);
      log(formatEpoch(m, options.epochs));
      epochNo = m.epoch + 1;
      lastDone = Infinity;
      epochStart = lastLine = performance.now() - 1e-3;
    },
    resumeAt(completedEpochs) {
      epochNo = completedEpochs + 1;
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function percent(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "–" : `${(100 * x).toFixed(1)}%`;
}

/**
 * Appends one epoch's metrics to a JSON Lines file, so an interrupted run
 * keeps every finished epoch.
 *
 * @param path the `metrics.jsonl` file; created when missing
 * @param m the epoch's metrics
 * @returns when written
 * @throws {Deno.errors.NotFound} when the folder does not exist
 *
 * @example Record two epochs
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { appendMetrics } from "./report.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const m = { epoch: 1, phase: "all" as const, trainLoss: 1, trainAccuracy: 0.5, imagesPerSecond: 10, seconds: 1 };
 * await appendMetrics(path, m);
 * await appendMetrics(path, { ...m, epoch: 2 });
 * assertEquals((await Deno.readTextFile(path)).trim().split("\n").length, 2);
 * ```
 */
export async function appendMetrics(path: string, m: EpochMetrics): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(m) + "\n", { append: true });
}

/** One curve of a chart. */
interface Series {
  label: string;
  color: string;
  dashed: boolean;
  points: [number, number][];
}

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function chart(
  x0: number,
  title: string,
  series: Series[],
  epochs: number,
  yMax: number,
  yFormat: (v: number) => string,
): string {
  const w = 360, h = 240, left = 52, right = 12, top = 28, bottom = 36;
  const pw = w - left - right, ph = h - top - bottom;
  const sx = (e: number) => left + (epochs <= 1 ? pw / 2 : ((e - 1) / (epochs - 1)) * pw);
  const sy = (v: number) => top + ph - (Math.min(Math.max(v, 0), yMax) / yMax) * ph;
  const parts: string[] = [`<g transform="translate(${x0},0)">`];
  parts.push(
    `<text x="${left + pw / 2}" y="18" text-anchor="middle" font-weight="bold">${
      escapeXml(title)
    }</text>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4, y = sy(v).toFixed(1);
    parts.push(
      `<line x1="${left}" y1="${y}" x2="${left + pw}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${
        yFormat(v)
      }</text>`,
    );
  }
  const ticks = Math.min(epochs, 10);
  for (let i = 0; i < ticks; i++) {
    const e = ticks <= 1 ? 1 : Math.round(1 + (i * (epochs - 1)) / (ticks - 1));
    parts.push(
      `<text x="${sx(e).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle">${e}</text>`,
    );
  }
  parts.push(
    `<text x="${left + pw / 2}" y="${h - 4}" text-anchor="middle">epoch</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  );
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map(([e, v], j) =>
      `${j === 0 ? "M" : "L"}${sx(e).toFixed(1)},${sy(v).toFixed(1)}`
    )
      .join(" ");
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="5,3"' : ""
      }/>`,
      ...s.points.map(([e, v]) =>
        `<circle cx="${sx(e).toFixed(1)}" cy="${sy(v).toFixed(1)}" r="2.5" fill="${s.color}"/>`
      ),
      `<text x="${left + 8}" y="${top + 14 + 14 * i}" fill="${s.color}">${
        escapeXml(s.label)
      }</text>`,
    );
  });
  parts.push("</g>");
  return parts.join("\n");
}

/**
 * Draws the training curves (loss and accuracy per epoch, train solid and
 * validation dashed) as a standalone SVG document.
 *
 * @param history the run's epochs, in order
 * @param title a caption, e.g. the model and dataset
 * @returns the SVG text
 *
 * @example Plot two epochs
 * ```ts
 * import { assert } from "@std/assert";
 * import { trainingCurvesSvg } from "./report.ts";
 * const m = { phase: "all" as const, imagesPerSecond: 100, seconds: 1 };
 * const svg = trainingCurvesSvg([
 *   { ...m, epoch: 1, trainLoss: 1.2, trainAccuracy: 0.6, valLoss: 1.1, valAccuracy: 0.62 },
 *   { ...m, epoch: 2, trainLoss: 0.8, trainAccuracy: 0.75, valLoss: 0.9, valAccuracy: 0.7 },
 * ], "lenet5 → fashion-mnist");
 * assert(svg.startsWith("<svg"));
 * ```
 */
export function trainingCurvesSvg(history: readonly EpochMetrics[], title = ""): string {
  const epochs = Math.max(1, ...history.map((m) => m.epoch));
  const pick = (f: (m: EpochMetrics) => number | undefined): [number, number][] =>
    history.flatMap((m) => {
      const v = f(m);
      return v === undefined || !Number.isFinite(v) ? [] : [[m.epoch, v] as [number, number]];
    });
  const loss: Series[] = [
    { label: "train loss", color: "#1f77b4", dashed: false, points: pick((m) => m.trainLoss) },
    { label: "validation loss", color: "#ff7f0e", dashed: true, points: pick((m) => m.valLoss) },
  ];
  const accuracy: Series[] = [
    {
      label: "train accuracy",
      color: "#1f77b4",
      dashed: false,
      points: pick((m) => m.trainAccuracy),
    },
    {
      label: "validation accuracy",
      color: "#ff7f0e",
      dashed: true,
      points: pick((m) => m.valAccuracy),
    },
  ];
  const lossMax = niceMax(Math.max(0, ...loss.flatMap((s) => s.points.map((p) => p[1]))));
  const w = 720, h = 270;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11">`,
    `<title>${escapeXml(title || "training curves")}</title>`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    chart(0, "loss", loss, epochs, lossMax, (v) => v.toFixed(2)),
    chart(360, "accuracy", accuracy, epochs, 1, (v) => `${Math.round(v * 100)}%`),
    title
      ? `<text x="${w / 2}" y="${h - 4}" text-anchor="middle" fill="#555">${
        escapeXml(title)
      }</text>`
      : "",
    "</svg>",
    "",
  ].join("\n");
}

/** One row of the final table. */
export interface SummaryRow {
  /** What the row measures, e.g. `test accuracy`. */
  name: string;
  /** Its value, formatted. */
  value: string;
}

/**
 * Formats rows as an aligned two-column text table.
 *
 * @param rows name and formatted value of each row
 * @returns the table, one line per row plus a header and a rule
 *
 * @example The end of a run
 * ```ts
 * import { summaryTable } from "./report.ts";
 * console.log(summaryTable([{ name: "test accuracy", value: "84.2%" }]));
 * ```
 */
export function summaryTable(rows: readonly SummaryRow[]): string {
  const width = Math.max(6, ...rows.map((r) => r.name.length));
  const valueWidth = Math.max(5, ...rows.map((r) => r.value.length));
  return [
    `${"metric".padEnd(width)}  value`,
    `${"-".repeat(width)}  ${"-".repeat(valueWidth)}`,
    ...rows.map((r) => `${r.name.padEnd(width)}  ${r.value}`),
  ].join("\n");
}
