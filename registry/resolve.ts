/**
 * Resolution of a reference (version or tag) to a version, with the rules for
 * yanked versions in one place, and the loading of the version it names.
 *
 * @module
 */
import { highestVersion, isSemver } from "../core/names.ts";
import { HttpProblem } from "./problem.ts";
import type { ModelRecord, Store, VersionRecord } from "./storage/store.ts";

/** The outcome of {@linkcode resolveRef}: a version, or why there is none. */
export type Resolution = { version: string } | { error: string };

/**
 * The highest version that is not yanked: stable versions first, a
 * prerelease only when no stable version is left.
 *
 * @param model the model and its versions
 * @returns the version, or undefined when every version is yanked
 */
export function highestAvailable(model: ModelRecord): string | undefined {
  return highestVersion(model.versions.filter((v) => !v.yanked).map((v) => v.version));
}

/**
 * Resolves `ref` against a model. An exact version resolves even when yanked
 * (so pinned users keep working); a tag that points at a yanked version does
 * not; `latest` falls back to the highest version that is not yanked.
 *
 * @param model the model with its versions and tags
 * @param ref a version or a tag
 * @returns the version, or a message saying why it cannot be resolved
 */
export function resolveRef(model: ModelRecord, ref: string): Resolution {
  const id = `${model.namespace}/${model.name}`;
  const known = model.versions.map((v) => v.version);
  if (isSemver(ref)) {
    if (known.includes(ref)) return { version: ref };
    return {
      error: `Version "${ref}" of "${id}" does not exist: available versions are ${
        known.map((v) => `"${v}"`).join(", ") || "none"
      }`,
    };
  }
  const tagged = model.tags[ref];
  const yanked = (v: string) => model.versions.find((x) => x.version === v)?.yanked ?? true;
  if (tagged !== undefined && !yanked(tagged)) return { version: tagged };
  if (ref === "latest") {
    const v = highestAvailable(model);
    if (v !== undefined) return { version: v };
    return { error: `"${id}" has no version left to resolve "latest": every version is yanked` };
  }
  if (tagged !== undefined) {
    return {
      error:
        `Tag "${ref}" of "${id}" points at yanked version "${tagged}": pin "${id}@${tagged}" or move the tag`,
    };
  }
  const tags = Object.keys(model.tags);
  return {
    error: `Tag "${ref}" of "${id}" does not exist: tags are ${
      tags.map((t) => `"${t}"`).join(", ") || "none"
    }`,
  };
}

/**
 * Loads a model and resolves a reference to a stored version.
 *
 * @param store the store
 * @param ns namespace
 * @param name model name
 * @param ref version or tag
 * @returns the version
 * @throws {HttpProblem} 404 with the reason
 */
export async function loadVersion(
  store: Store,
  ns: string,
  name: string,
  ref: string,
): Promise<VersionRecord> {
  // An exact version resolves to itself (yanked or not): one lookup, and the
  // model's versions and tags are read only to explain a miss.
  if (isSemver(ref)) {
    const exact = await store.getVersion(ns, name, ref);
    if (exact) return exact;
  }
  const model = await store.getModel(ns, name);
  if (!model) throw missingModel(ns, name);
  const r = resolveRef(model, ref);
  if ("error" in r) throw new HttpProblem(404, r.error);
  const v = await store.getVersion(ns, name, r.version);
  if (!v) throw new HttpProblem(404, `Version "${r.version}" of "${ns}/${name}" does not exist`);
  return v;
}

/**
 * The answer for a model that does not exist.
 *
 * @param ns namespace
 * @param name model name
 * @returns a 404 problem that says how to search
 */
export function missingModel(ns: string, name: string): HttpProblem {
  return new HttpProblem(
    404,
    `Model "${ns}/${name}" does not exist: search with GET /api/models?search=${name}`,
  );
}
