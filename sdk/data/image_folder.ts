/**
 * A folder of PNG and JPEG images with one subfolder per class
 * (ImageNet/torchvision `ImageFolder` style):
 *
 * ```text
 * pets/
 *   cat/ 001.jpg 002.png …
 *   dog/ 001.jpg nested/002.jpg …
 * ```
 *
 * Every image is read and decoded once when the folder is opened, without
 * keeping its pixels, so a broken file fails the run before training starts
 * rather than an hour into it; batches then read and decode their images
 * again, lazily. For folders too large to decode twice, `validate: "header"`
 * only reads each file's header up front; a file whose pixels turn out to be
 * broken then fails the batch that reads it.
 *
 * @module
 */
import { isAbsolute, join, relative } from "node:path";
import { countClasses, streamBatches } from "./_batches.ts";
import {
  decodeImage,
  errorMessage,
  type ImageHeader,
  type RawImage,
  readImageHeader,
} from "./_image.ts";
import { resolveSplit, selectSplit, splitKey } from "./_split.ts";
import type { Batch, BatchOptions, Dataset, Split, SplitOptions } from "./types.ts";

/** Default file extensions of {@linkcode loadImageFolder}. */
export const IMAGE_EXTENSIONS: readonly string[] = [".png", ".jpg", ".jpeg"];

/** Options of {@linkcode loadImageFolder}. */
export interface ImageFolderOptions extends SplitOptions {
  /** Which split of the folder to take. @default "all" */
  split?: Split;
  /** Skip unreadable images (counted in `skipped`) instead of failing. @default false */
  skipBad?: boolean;
  /** File extensions to read, case-insensitive; other files are ignored. @default [".png", ".jpg", ".jpeg"] */
  extensions?: string[];
  /** Up-front check: decode every image once, or only read headers. @default "decode" */
  validate?: "decode" | "header";
}

/** An image that cannot be used, and why. */
export interface BadImage {
  /** The path, as under the folder given. */
  path: string;
  /** What is wrong with it. */
  reason: string;
}

/** Thrown when images of a folder cannot be read and `skipBad` is off. */
export class BadImagesError extends Error {
  /** Every unreadable image with its reason. */
  readonly badImages: BadImage[];
  /**
   * Lists the unreadable images, the advice first.
   *
   * @param root the folder
   * @param badImages the unreadable images
   */
  constructor(root: string, badImages: BadImage[]) {
    const shown = badImages.slice(0, 20).map((b) => `\n  ${b.path}: ${b.reason}`).join("");
    const more = badImages.length > 20 ? `\n  … and ${badImages.length - 20} more` : "";
    // The advice comes first and the list last, so a command line that shows
    // the message's last line still names a file.
    super(
      `Cannot use image folder "${root}": ${badImages.length} image${
        badImages.length === 1 ? "" : "s"
      } cannot be read: fix or remove them, or skip them with skipBad (--skip-bad, or "?skipBad=1" in a data spec):${shown}${more}`,
    );
    this.name = "BadImagesError";
    this.badImages = badImages;
  }
}

/** A dataset over an image folder. */
export interface ImageFolderDataset extends Dataset {
  /** The folder, as given. */
  readonly root: string;
  /** Number of images skipped as unreadable (only with `skipBad`). */
  readonly skipped: number;
  /** The skipped images and why. */
  readonly badImages: readonly BadImage[];
}

interface Candidate {
  path: string;
  label: number;
  size: number;
  mtime: number;
  bad?: string;
}

/**
 * Opens a folder of images, one subfolder per class; class names are the
 * sorted subfolder names. Files are sniffed by content, not extension.
 * Symbolic links are followed only when they stay inside the folder.
 * Images are resized to the preprocessing size per batch; without one, to
 * the most common size in the folder.
 *
 * @param path the folder
 * @param opts skipBad, extensions, validate, split options
 * @returns the dataset; `skipped` counts images left out
 * @throws {BadImagesError} when images cannot be read and `skipBad` is off, listing each path
 * @throws {Error} when the folder is missing, has no class subfolders, has only
 *   one, or a class has no images
 *
 * @example Open a folder and report what was skipped
 * ```ts
 * import { loadImageFolder } from "./image_folder.ts";
 * async function openPets() {
 *   const pets = await loadImageFolder("data/pets", { skipBad: true });
 *   console.log(pets.classes, pets.counts, `${pets.skipped} skipped`);
 *   return pets;
 * }
 * ```
 */
export async function loadImageFolder(
  path: string,
  opts: ImageFolderOptions = {},
): Promise<ImageFolderDataset> {
  const split = resolveSplit(opts, "all");
  const extensions = (opts.extensions ?? IMAGE_EXTENSIONS).map((e) =>
    (e.startsWith(".") ? e : `.${e}`).toLowerCase()
  );
  const validate = opts.validate ?? "decode";
  if (validate !== "decode" && validate !== "header") {
    throw new RangeError(`Invalid validate "${validate}": use "decode" or "header"`);
  }
  const rootReal = await openRoot(path);
  const classDirs = await listClasses(path, rootReal);

  const candidates: Candidate[] = [];
  for (const [label, name] of classDirs.entries()) {
    const dir = join(path, name);
    const files = await listImages(dir, rootReal, extensions, new Set());
    if (files.length === 0) {
      throw new Error(
        `Class folder "${dir}" has no images (${
          extensions.join(", ")
        }): add some or remove the folder`,
      );
    }
    for (const f of files) candidates.push({ ...f, label });
  }

  const headers = new Map<string, ImageHeader>();
  await forEachLimited(candidates, 8, async (c) => {
    if (c.bad !== undefined) return;
    try {
      const bytes = await Deno.readFile(c.path);
      const header = readImageHeader(bytes);
      if (validate === "decode") decodeImage(bytes);
      headers.set(c.path, header);
    } catch (e) {
      c.bad = errorMessage(e);
    }
  });
  const badImages = candidates.filter((c) => c.bad !== undefined).map((c) => ({
    path: c.path,
    reason: c.bad!,
  }));
  if (badImages.length > 0 && !opts.skipBad) throw new BadImagesError(path, badImages);

  const good = candidates.filter((c) => c.bad === undefined);
  const classes = classDirs;
  const emptied = classes.filter((_, label) => !good.some((c) => c.label === label));
  if (emptied.length > 0) {
    throw new Error(
      `Class folder "${join(path, emptied[0]!)}" has no readable images: all were skipped as bad`,
    );
  }
  const labels = Int32Array.from(good, (c) => c.label);
  const indices = selectSplit(labels, classes.length, split);
  const imageShape = commonShape(good.map((c) => headers.get(c.path)!));
  const listing = good.map((c) => `${relative(path, c.path)}\t${c.label}\t${c.size}\t${c.mtime}`)
    .join("\n");
  const identity = `dir:${rootReal}?${splitKey(split)}${
    opts.skipBad ? "&skipBad=1" : ""
  }#sha256-${await sha256Hex(listing)}`;

  const files = good.map((c) => c.path);
  const skipped = opts.skipBad ? badImages : [];
  const counts = countClasses(labels, indices, classes.length);
  return {
    name: `${path} (${split.split})`,
    identity,
    classes,
    size: indices.length,
    imageShape,
    counts,
    root: path,
    skipped: skipped.length,
    badImages: skipped,
    batches(batchSize: number, batchOpts: BatchOptions = {}): AsyncIterable<Batch> {
      return streamBatches(indices, imageShape, batchSize, batchOpts, async (idx) => {
        const images = await Promise.all(Array.from(idx, async (i): Promise<RawImage> => {
          const file = files[i]!;
          try {
            return decodeImage(await Deno.readFile(file));
          } catch (e) {
            throw new Error(`Cannot read image "${file}": ${errorMessage(e)}`);
          }
        }));
        return { images, labels: Int32Array.from(idx, (i) => labels[i]!) };
      });
    },
  };
}

async function openRoot(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    if (!info.isDirectory) {
      throw new Error(
        `Image folder "${path}" is a file, not a folder: give a folder with one subfolder of images per class`,
      );
    }
    return await Deno.realPath(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Image folder "${path}" does not exist: give a folder with one subfolder of images per class`,
      );
    }
    throw e;
  }
}

async function listClasses(path: string, rootReal: string): Promise<string[]> {
  const classes: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (entry.name.startsWith(".")) continue;
    if (entry.isSymlink) {
      const target = await realPathOrUndefined(join(path, entry.name));
      if (target === undefined || !(await Deno.stat(target)).isDirectory) continue;
      if (!inside(rootReal, target)) {
        throw new Error(
          `Class folder "${
            join(path, entry.name)
          }" is a symbolic link to "${target}", outside the image folder: copy the images in instead`,
        );
      }
      classes.push(entry.name);
    } else if (entry.isDirectory) classes.push(entry.name);
  }
  classes.sort();
  if (classes.length === 0) {
    throw new Error(
      `Image folder "${path}" has no class subfolders: put each class's images in its own subfolder, e.g. "${
        join(path, "cat", "001.jpg")
      }"`,
    );
  }
  if (classes.length === 1) {
    throw new Error(
      `Image folder "${path}" has only one class "${
        classes[0]
      }": a classifier needs at least two class subfolders`,
    );
  }
  return classes;
}

async function listImages(
  dir: string,
  rootReal: string,
  extensions: readonly string[],
  visited: Set<string>,
): Promise<Omit<Candidate, "label">[]> {
  const real = await Deno.realPath(dir);
  if (visited.has(real)) return [];
  visited.add(real);
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.startsWith(".")) entries.push(entry);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: Omit<Candidate, "label">[] = [];
  for (const entry of entries) {
    const p = join(dir, entry.name);
    const isImage = extensions.some((e) => entry.name.toLowerCase().endsWith(e));
    let isDir = entry.isDirectory;
    if (entry.isSymlink) {
      const target = await realPathOrUndefined(p);
      if (target === undefined) {
        if (isImage) out.push({ path: p, size: 0, mtime: 0, bad: "broken symbolic link" });
        continue;
      }
      if (!inside(rootReal, target)) {
        if (isImage) {
          out.push({
            path: p,
            size: 0,
            mtime: 0,
            bad: `symbolic link to "${target}", outside the image folder`,
          });
        }
        continue;
      }
      isDir = (await Deno.stat(target)).isDirectory;
    }
    if (isDir) {
      out.push(...await listImages(p, rootReal, extensions, visited));
    } else if (isImage) {
      const info = await Deno.stat(p);
      out.push({ path: p, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
    }
  }
  return out;
}

async function realPathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.realPath(path);
  } catch {
    return undefined;
  }
}

function inside(rootReal: string, target: string): boolean {
  const rel = relative(rootReal, target);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/** The most common height and width; 1 channel only when every image is gray. */
function commonShape(headers: ImageHeader[]): [number, number, number] {
  const tally = new Map<string, number>();
  let best = "";
  let bestCount = 0;
  for (const h of headers) {
    const key = `${h.height}x${h.width}`;
    const n = (tally.get(key) ?? 0) + 1;
    tally.set(key, n);
    if (n > bestCount) [best, bestCount] = [key, n];
  }
  const [height, width] = best.split("x").map(Number) as [number, number];
  return [height, width, headers.every((h) => h.channels === 1) ? 1 : 3];
}

async function forEachLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
