/**
 * The registry's HTTP API as TypeScript types, generated from its OpenAPI
 * document by openapi-typescript: `deno task gen:api` writes this file, and a
 * test checks that it matches the document a registry serves. Do not edit.
 *
 * @module
 */
/** Every path of the API: its parameters, request body and responses by status. */
export interface paths {
  /** The operations on /healthz. */
  "/healthz": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** Liveness */
    get: operations["getHealth"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/blobs/{digest}. */
  "/api/blobs/{digest}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * A blob's bytes (Range, If-None-Match)
     * @description Strong ETag (its digest), Cache-Control immutable, one byte range per request; with --blob-redirect, a 302 to object storage.
     */
    get: operations["getBlob"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    /**
     * Whether a blob exists, and its size
     * @description The GET answer's status and headers, without the bytes.
     */
    head: operations["headBlob"];
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/blobs. */
  "/api/blobs": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Upload one blob, streamed; ?digest= is checked
     * @description The raw body is hashed while it streams; a wrong digest, a cut body or an over-limit body stores nothing.
     */
    post: operations["uploadBlob"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models. */
  "/api/models": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * List and search models
     * @description Search covers name, description, task and labels; nextCursor pages.
     */
    get: operations["listModels"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models/{ns}/{name}. */
  "/api/models/{ns}/{name}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** One model: versions, tags, downloads, latest */
    get: operations["getModel"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models/{ns}/{name}/{ref}. */
  "/api/models/{ns}/{name}/{ref}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * One version's files, card and architecture (ref: version or tag)
     * @description Counts a download.
     */
    get: operations["getVersion"];
    /**
     * Publish a version from uploaded blobs
     * @description ref is the exact version to publish. The model.json is checked (layers built, every weight's shape), every file's blob must be uploaded; the version becomes visible atomically.
     */
    put: operations["publishVersion"];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models/{ns}/{name}/{ref}/model.json. */
  "/api/models/{ns}/{name}/{ref}/model.json": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /**
     * A model.json that tf.loadLayersModel(url) loads as is
     * @description Its weight paths point at the blobs. Counts a download.
     */
    get: operations["getModelJson"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models/{ns}/{name}/tags/{tag}. */
  "/api/models/{ns}/{name}/tags/{tag}": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    /** Point a tag at a version */
    put: operations["moveTag"];
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /api/models/{ns}/{name}/{version}/yank. */
  "/api/models/{ns}/{name}/{version}/yank": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    get?: never;
    put?: never;
    /**
     * Yank a version ({"yanked": false} restores it)
     * @description A yanked version is hidden from tags and latest, still downloadable by exact version.
     */
    post: operations["yankVersion"];
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
  /** The operations on /openapi.json. */
  "/openapi.json": {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    /** This document */
    get: operations["getOpenApiDocument"];
    put?: never;
    post?: never;
    delete?: never;
    options?: never;
    head?: never;
    patch?: never;
    trace?: never;
  };
}
/** The API's webhooks: none. */
export type webhooks = Record<string, never>;
/** The named schemas (the bodies of core/wire.ts), parameters and security schemes. */
export interface components {
  /** The schemas of the API. */
  schemas: {
    /** @description An RFC 9457 problem */
    Problem: {
      /** @description about:blank: the status says it all */
      type: string;
      title: string;
      status: number;
      /** @description What went wrong and what to do about it */
      detail: string;
      /** @description The request path */
      instance?: string;
      /** @description Every problem found, itemized */
      errors?: string[];
    };
    BlobInfo: {
      digest: string;
      /** @description Bytes */
      size: number;
    };
    ModelList: {
      items: components["schemas"]["ModelRecord"][];
      /** @description Pass as cursor for the next page */
      nextCursor: string | null;
    };
    ModelRecord: {
      namespace: string;
      name: string;
      /** @description From the latest version's card */
      description: string;
      /** @description From the latest version's card */
      task: string;
      /** @description From the latest version's card */
      labels: string[];
      /** @description ISO 8601 time of the last publish, tag move or yank */
      updatedAt: string;
      /** @description Downloads of all its versions */
      downloads: number;
      /** @description Every version, oldest first */
      versions: components["schemas"]["VersionSummary"][];
      /** @description Tag name → version */
      tags: {
        [key: string]: string;
      };
    };
    VersionSummary: {
      version: string;
      /** @description ISO 8601 time of publication */
      createdAt: string;
      yanked: boolean;
      downloads: number;
    };
    ModelDocument: {
      namespace: string;
      name: string;
      /** @description From the latest version's card */
      description: string;
      /** @description From the latest version's card */
      task: string;
      /** @description From the latest version's card */
      labels: string[];
      /** @description ISO 8601 time of the last publish, tag move or yank */
      updatedAt: string;
      /** @description Downloads of all its versions */
      downloads: number;
      /** @description Every version, oldest first */
      versions: components["schemas"]["VersionSummary"][];
      /** @description Tag name → version */
      tags: {
        [key: string]: string;
      };
      /** @description What a bare reference resolves to; null when every version is yanked */
      latest: string | null;
    };
    VersionDocument: {
      namespace: string;
      name: string;
      /** @description The exact version the reference resolved to */
      version: string;
      /** @example zoo/lenet5@1.0.0 */
      reference: string;
      yanked: boolean;
      createdAt: string;
      downloads: number;
      files: components["schemas"]["FileEntry"][];
      card: {
        [key: string]: unknown;
      };
      /** @description Shapes, parameters, strides, receptive fields, head kind and cut points */
      architecture: {
        [key: string]: unknown;
      };
      urls: {
        self: string;
        modelJson: string;
        page: string;
      };
    };
    /** @description One file of a version and the blob holding it */
    FileEntry: {
      /** @description Relative path, e.g. model.json, group1-shard1of1.bin */
      path: string;
      digest: string;
      size: number;
    };
    ModelJson: {
      modelTopology: {
        [key: string]: unknown;
      };
      weightsManifest: ({
        paths: string[];
        weights: ({
          name: string;
          shape: number[];
          dtype: string;
        } & {
          [key: string]: unknown;
        })[];
      } & {
        [key: string]: unknown;
      })[];
    } & {
      [key: string]: unknown;
    };
    /** @description The files of the version and its card */
    PublishRequest: {
      files: components["schemas"]["FileEntry"][];
      /** @description Task, labels, dataset, license, metrics, lineage, …; at most 256 KiB as JSON */
      card?: {
        task?: string;
        description?: string;
        license?: string;
        source?: string;
        labels?: string[];
      } & {
        [key: string]: unknown;
      };
    };
    TagDocument: {
      namespace: string;
      name: string;
      tag: string;
      version: string;
    };
    TagRequest: {
      /**
       * @description A semantic version (semver.org)
       * @example 1.0.0
       */
      version: string;
    };
    YankDocument: {
      namespace: string;
      name: string;
      version: string;
      yanked: boolean;
    };
    YankRequest: {
      /** @description false restores the version */
      yanked?: boolean;
    };
  };
  /** The responses of the API. */
  responses: {
    /** @description The request is malformed: the detail names the value and what to send */
    BadRequest: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description No token where one is needed, or an unknown or malformed one (on any route): send Authorization: Bearer <token> */
    Unauthorized: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The token lacks the scope this needs */
    Forbidden: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description No such model, version, tag or blob */
    NotFound: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The version exists: versions are immutable */
    Conflict: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The body is over the limit */
    ContentTooLarge: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The range is outside the blob */
    RangeNotSatisfiable: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The request is well formed but invalid: every problem is listed */
    UnprocessableContent: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The registry failed: it logged the cause */
    InternalServerError: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
    /** @description The write took longer than --request-timeout: nothing was stored */
    ServiceUnavailable: {
      headers: {
        [name: string]: unknown;
      };
      content: {
        "application/problem+json": components["schemas"]["Problem"];
      };
    };
  };
  /** The parameters of the API. */
  parameters: never;
  /** The requestBodies of the API. */
  requestBodies: never;
  /** The headers of the API. */
  headers: never;
  /** The pathItems of the API. */
  pathItems: never;
}
/** Shared definitions: none. */
export type $defs = Record<string, never>;
/** Every operation by its operationId. */
export interface operations {
  /** The operation getHealth: its parameters, body and responses. */
  getHealth: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description Serving */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "text/plain": "ok";
        };
      };
      401: components["responses"]["Unauthorized"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation getBlob: its parameters, body and responses. */
  getBlob: {
    parameters: {
      query?: never;
      header?: {
        /** @description bytes=START-END, bytes=START- or bytes=-SUFFIX */
        range?: string;
        "if-none-match"?: string;
        "if-range"?: string;
      };
      path: {
        /** @description sha256: and 64 lowercase hex digits */
        digest: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The whole blob */
      200: {
        headers: {
          /** @description The digest, quoted */
          etag?: string;
          "content-length"?: number;
          [name: string]: unknown;
        };
        content: {
          "application/octet-stream": string;
        };
      };
      /** @description The requested range */
      206: {
        headers: {
          /** @description The digest, quoted */
          etag?: string;
          "content-length"?: number;
          "content-range"?: string;
          [name: string]: unknown;
        };
        content: {
          "application/octet-stream": string;
        };
      };
      /** @description Fetch the bytes from this location (--blob-redirect) */
      302: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description The client's copy is current */
      304: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      416: components["responses"]["RangeNotSatisfiable"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation headBlob: its parameters, body and responses. */
  headBlob: {
    parameters: {
      query?: never;
      header?: {
        /** @description bytes=START-END, bytes=START- or bytes=-SUFFIX */
        range?: string;
        "if-none-match"?: string;
        "if-range"?: string;
      };
      path: {
        /** @description sha256: and 64 lowercase hex digits */
        digest: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The blob exists */
      200: {
        headers: {
          /** @description The digest, quoted */
          etag?: string;
          "content-length"?: number;
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description The range exists */
      206: {
        headers: {
          /** @description The digest, quoted */
          etag?: string;
          "content-length"?: number;
          [name: string]: unknown;
        };
        content?: never;
      };
      /** @description The client's copy is current */
      304: {
        headers: {
          [name: string]: unknown;
        };
        content?: never;
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      416: components["responses"]["RangeNotSatisfiable"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation uploadBlob: its parameters, body and responses. */
  uploadBlob: {
    parameters: {
      query?: {
        /** @description The digest the bytes must have; a stored blob is answered at once */
        digest?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/octet-stream": string;
      };
    };
    responses: {
      /** @description Already stored (only to a token that may read) */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["BlobInfo"];
        };
      };
      /** @description Stored */
      201: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["BlobInfo"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      413: components["responses"]["ContentTooLarge"];
      500: components["responses"]["InternalServerError"];
      503: components["responses"]["ServiceUnavailable"];
    };
  };
  /** The operation listModels: its parameters, body and responses. */
  listModels: {
    parameters: {
      query?: {
        /** @description Substring of name, description, task or labels */
        search?: string;
        /** @description Exact task */
        task?: string;
        sort?: "downloads" | "updated";
        /** @description Models per page */
        limit?: number;
        /** @description nextCursor of the previous page */
        cursor?: string;
      };
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description A page of models */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["ModelList"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation getModel: its parameters, body and responses. */
  getModel: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The model */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["ModelDocument"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation getVersion: its parameters, body and responses. */
  getVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
        /** @description A semver version such as 1.2.0, or a tag such as latest */
        ref: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The version */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["VersionDocument"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation publishVersion: its parameters, body and responses. */
  publishVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
        /** @description A semantic version (semver.org) */
        ref: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": components["schemas"]["PublishRequest"];
      };
    };
    responses: {
      /** @description Published */
      201: {
        headers: {
          /** @description The version's URL */
          location?: string;
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["VersionDocument"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      409: components["responses"]["Conflict"];
      413: components["responses"]["ContentTooLarge"];
      422: components["responses"]["UnprocessableContent"];
      500: components["responses"]["InternalServerError"];
      503: components["responses"]["ServiceUnavailable"];
    };
  };
  /** The operation getModelJson: its parameters, body and responses. */
  getModelJson: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
        /** @description A semver version such as 1.2.0, or a tag such as latest */
        ref: string;
      };
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The model.json */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["ModelJson"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      413: components["responses"]["ContentTooLarge"];
      500: components["responses"]["InternalServerError"];
    };
  };
  /** The operation moveTag: its parameters, body and responses. */
  moveTag: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
        /** @description A tag: starts with a letter; lowercase letters, digits, -, _, . */
        tag: string;
      };
      cookie?: never;
    };
    requestBody: {
      content: {
        "application/json": components["schemas"]["TagRequest"];
      };
    };
    responses: {
      /** @description The tag moved */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["TagDocument"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      413: components["responses"]["ContentTooLarge"];
      422: components["responses"]["UnprocessableContent"];
      500: components["responses"]["InternalServerError"];
      503: components["responses"]["ServiceUnavailable"];
    };
  };
  /** The operation yankVersion: its parameters, body and responses. */
  yankVersion: {
    parameters: {
      query?: never;
      header?: never;
      path: {
        /** @description The model's namespace: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        ns: string;
        /** @description The model's name: 1-64 lowercase letters, digits, "-", "_", "."; no ".." */
        name: string;
        /** @description A semantic version (semver.org) */
        version: string;
      };
      cookie?: never;
    };
    requestBody?: {
      content: {
        "application/json": components["schemas"]["YankRequest"];
      };
    };
    responses: {
      /** @description Yanked or restored */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": components["schemas"]["YankDocument"];
        };
      };
      400: components["responses"]["BadRequest"];
      401: components["responses"]["Unauthorized"];
      403: components["responses"]["Forbidden"];
      404: components["responses"]["NotFound"];
      413: components["responses"]["ContentTooLarge"];
      422: components["responses"]["UnprocessableContent"];
      500: components["responses"]["InternalServerError"];
      503: components["responses"]["ServiceUnavailable"];
    };
  };
  /** The operation getOpenApiDocument: its parameters, body and responses. */
  getOpenApiDocument: {
    parameters: {
      query?: never;
      header?: never;
      path?: never;
      cookie?: never;
    };
    requestBody?: never;
    responses: {
      /** @description The OpenAPI 3.1 document */
      200: {
        headers: {
          [name: string]: unknown;
        };
        content: {
          "application/json": {
            [key: string]: unknown;
          };
        };
      };
      401: components["responses"]["Unauthorized"];
      500: components["responses"]["InternalServerError"];
    };
  };
}
