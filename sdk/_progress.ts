/**
 * Download progress on a terminal: a cli-progress bar written to stderr, so
 * piped stdout stays clean, and nothing at all when stderr is not a terminal.
 *
 * @module
 */

import process from "node:process";
// cli-progress ships no types; the few members used are typed below.
import cliProgress from "cli-progress";

/** Reports the progress of one transfer. */
export interface Progress {
  /** Starts showing a transfer of `total` bytes. */
  start(label: string, total: number): void;
  /** Sets the bytes transferred so far. */
  update(done: number): void;
  /** Stops showing the transfer. */
  stop(): void;
}

interface SingleBar {
  start(total: number, start: number, payload: Record<string, string>): void;
  update(value: number): void;
  stop(): void;
}

/** A progress reporter that shows nothing. */
export const silentProgress: Progress = {
  start() {},
  update() {},
  stop() {},
};

/**
 * A progress reporter: a bar on stderr when it is a terminal (or when forced).
 *
 * @param enabled true to always show the bar, false never; by default only on a terminal
 * @returns the reporter
 */
export function createProgress(enabled?: boolean): Progress {
  if (!(enabled ?? isTerminal())) return silentProgress;
  let bar: SingleBar | null = null;
  return {
    start(label, total) {
      const Bar = (cliProgress as { SingleBar: new (o: object, p: object) => SingleBar })
        .SingleBar;
      bar = new Bar(
        {
          stream: process.stderr,
          format: "{label} [{bar}] {percentage}% | {value}/{total} bytes | {eta_formatted}",
          hideCursor: true,
          noTTYOutput: true,
        },
        (cliProgress as { Presets: { shades_classic: object } }).Presets.shades_classic,
      );
      bar.start(total, 0, { label });
    },
    update(done) {
      bar?.update(done);
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

/** Whether stderr is a terminal (false where asking is not permitted). */
export function isTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}
