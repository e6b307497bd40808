/**
 * Turns a failed validation of a request against its schema (`core/wire.ts`)
 * into the problem answer the registry has always given for that input: the
 * first issue, said as {@linkcode describeIssue} says it, in the `detail`;
 * status 400, or the route's own status for a value (422 for a version to
 * publish or yank).
 *
 * @module
 */
import type { Context } from "hono";
import type { OpenAPIHonoOptions } from "@hono/zod-openapi";
import type { z } from "zod";
import { describeIssue } from "../core/wire.ts";
import type { RegistryEnv } from "./env.ts";
import { HttpProblem } from "./problem.ts";

/** How a route answers invalid input. */
export interface ValidationOptions {
  /** Status for an invalid value by its field name; 400 for the others. */
  status?: Record<string, 400 | 422>;
  /**
   * Checked once the model's names are valid and before any other value is
   * judged, so that a write from a client without the right token is told
   * that first (a 401 or 403 thrown from here).
   */
  authorize?: (c: Context<RegistryEnv>, params: { ns: string }) => void;
}

/** The names every model route checks first, in this order. */
const NAMES = new Set(["ns", "name"]);

/**
 * The validation hook of a route: answers the first issue as a problem.
 *
 * @param options per-field statuses and the authorization to check first
 * @returns the hook, for `defaultHook` or a route's own
 *
 * @example Every route of an app
 * ```ts ignore
 * const app = new OpenAPIHono<RegistryEnv>({ defaultHook: validationHook() });
 * ```
 */
export function validationHook(
  options: ValidationOptions = {},
): NonNullable<OpenAPIHonoOptions<RegistryEnv>["defaultHook"]> {
  return (result, c) => {
    if (result.success) return;
    const issues: z.core.$ZodIssue[] = result.error.issues;
    const first = issues.find((i) => NAMES.has(String(i.path[0]))) ?? issues[0];
    if (!first) return;
    const field = String(first.path[0] ?? "");
    // The validator passes what it validated along with the failure.
    const data = ((result as { data?: unknown }).data ?? {}) as Record<string, string>;
    if (options.authorize && !NAMES.has(field) && result.target === "param") {
      options.authorize(c, { ns: data.ns ?? "" });
    }
    throw new HttpProblem(options.status?.[field] ?? 400, describeIssue(first, data));
  };
}
