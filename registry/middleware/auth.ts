/**
 * Authentication and authorization middleware: reads the bearer token once
 * per request (Hono's `bearerAuth`), then guards reads (private registries)
 * and writes (scopes).
 *
 * @module
 */
import type { Context, MiddlewareHandler, Next } from "hono";
import { canPublish, canRead, hashToken } from "../auth.ts";
import { bearerAuth } from "hono/bearer-auth";
import { HttpProblem, problem } from "../problem.ts";
import type { RegistryEnv } from "../env.ts";

const CHALLENGE = { "www-authenticate": 'Bearer realm="model-zoo"' };

/**
 * Resolves the `Authorization: Bearer` token into `c.var.scopes` (empty when
 * anonymous); an unknown or malformed token is a 401 straight away. The header
 * is parsed by Hono's `bearerAuth`, run only when a request sends one: reads
 * are anonymous unless the registry is private, which the routes decide.
 *
 * @example Use it before every route
 * ```ts ignore
 * app.use("*", authenticate());
 * ```
 */
export function authenticate(): MiddlewareHandler<RegistryEnv> {
  const bearer = bearerAuth({
    realm: "model-zoo",
    verifyToken: async (token, c: Context<RegistryEnv>) => {
      const record = await c.get("store").findToken(await hashToken(token));
      if (!record) return false;
      c.set("scopes", record.scopes);
      c.set("tokenLabel", record.label || record.id);
      return true;
    },
    // A malformed header is a 401 like an unknown token (bearerAuth's own is 400).
    invalidAuthenticationHeader: {
      message: (c: Context) =>
        problem(
          c,
          401,
          'Malformed Authorization header: use "Authorization: Bearer <token>"',
          { headers: CHALLENGE },
        ),
    },
    invalidToken: {
      message: (c: Context) =>
        problem(
          c,
          401,
          "Unknown token: mint one with `deno task token create --scope <scope>`",
          { headers: CHALLENGE },
        ),
    },
  });
  return (c, next) => {
    c.set("scopes", []);
    c.set("tokenLabel", "");
    if (c.req.header("authorization") === undefined) return next();
    return bearer(c, next);
  };
}

/** Lets a read through unless the registry is private and the token lacks `read`. */
export const requireRead: MiddlewareHandler<RegistryEnv> = (c, next) => {
  // c.get, not c.var: every read of c.var copies all the variables into a new object.
  if (c.get("auth").private) {
    const scopes = c.get("scopes");
    if (scopes.length === 0) {
      throw new HttpProblem(
        401,
        'This registry is private: send "Authorization: Bearer <token>" with a "read" scope',
        {
          headers: CHALLENGE,
        },
      );
    }
    if (!canRead(scopes)) {
      throw new HttpProblem(403, 'Your token cannot read this registry: it needs the "read" scope');
    }
  }
  return next();
};

/** Requires a token that may publish somewhere (blob uploads are not tied to a namespace). */
export const requireAnyPublish: MiddlewareHandler<RegistryEnv> = async (
  c: Context<RegistryEnv>,
  next: Next,
) => {
  const scopes = c.var.scopes;
  if (scopes.length === 0) {
    throw new HttpProblem(
      401,
      'Uploading needs a token: send "Authorization: Bearer <token>" with a "publish:<namespace>" scope',
      {
        headers: CHALLENGE,
      },
    );
  }
  if (!scopes.some((s) => s === "admin" || s.startsWith("publish:"))) {
    throw new HttpProblem(
      403,
      'Your token cannot upload: it needs a "publish:<namespace>" or "admin" scope',
    );
  }
  await next();
};

/**
 * Requires a token that may publish in `namespace`.
 *
 * @param c the request context
 * @param namespace the model's namespace
 * @throws {HttpProblem} 401 without a token, 403 without the scope
 */
export function requirePublish(c: Context<RegistryEnv>, namespace: string): void {
  if (c.var.scopes.length === 0) {
    throw new HttpProblem(
      401,
      `Publishing to "${namespace}" needs a token: send "Authorization: Bearer <token>" with scope "publish:${namespace}"`,
      {
        headers: CHALLENGE,
      },
    );
  }
  if (!canPublish(c.var.scopes, namespace)) {
    throw new HttpProblem(
      403,
      `Your token cannot publish to "${namespace}": it needs scope "publish:${namespace}" or "admin"`,
    );
  }
}
