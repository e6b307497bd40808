/**
 * The layer rules of this repository, in one table: which folder is which
 * layer and which layers each may import. `tools/check_layers.ts` enforces
 * them (and the absence of import cycles) in `.ci/run`; ARCHITECTURE.md
 * draws the same table. To change a rule, edit this file and that drawing.
 *
 * A module belongs to the first layer, in the order listed, with a pattern
 * that matches its path from the repository root. Patterns are globs: `*`
 * matches within one path segment, `**` across segments. A module matched by
 * no layer is reported, so a new folder has to be placed deliberately.
 *
 * @module
 */
/** One layer: the modules it holds and the layers they may import. */
export interface Layer {
  /** The layer's name, used in `may` and in messages. */
  name: string;
  /** Globs of paths from the repository root (`*` within a segment, `**` across). */
  files: string[];
  /** Names of the layers its modules may import (its own included only if listed). */
  may: string[];
  /** Specifiers (globs, raw or resolved) its modules must not import, e.g. `npm:@tensorflow/*`. */
  forbid?: string[];
  /** One line on what the layer is, shown with its violations. */
  why: string;
}

/** One allowed import across the layers, for the rare case the layers cannot express. */
export interface Exception {
  /** Glob of the importing modules. */
  from: string;
  /** Glob of the imported modules. */
  to: string;
  /** Why the exception exists. */
  why: string;
}

/** Modules only some importers may use, whatever their layers allow. */
export interface Private {
  /** Glob of the private modules. */
  files: string;
  /** Globs or layer names of the modules that may import them. */
  importers: string[];
  /** Why they are private. */
  why: string;
}

/** The whole rule table. */
export interface LayerRules {
  /** The layers; a module belongs to the first that matches it. */
  layers: Layer[];
  /** Imports allowed although their layers say no. */
  exceptions: Exception[];
  /** Modules with a closed set of importers. */
  private: Private[];
  /** Globs of paths that are not the project's own modules. */
  skip: string[];
}

/** The rules `deno task check:layers` checks the repository against. */
export const RULES: LayerRules = {
  layers: [
    {
      name: "std",
      files: ["_std/**"],
      may: ["std"],
      why: "the @std shims: nothing of the project below them",
    },
    {
      name: "core",
      files: ["core/**"],
      may: ["std", "core"],
      forbid: ["@tensorflow/*", "npm:@tensorflow/*", "npm:/@tensorflow/*"],
      why: "names, model.json checks, wire types, architecture analysis: shared by the " +
        "registry and the SDK, and free of TensorFlow.js so the server does not load it",
    },
    {
      name: "sdk-base",
      files: [
        "sdk/devices/**",
        "sdk/data/**",
        "sdk/surgery/**",
        "sdk/_*.ts",
        "sdk/types.ts",
        "sdk/errors.ts",
        "sdk/model_layers.ts",
      ],
      may: ["std", "core", "sdk-base"],
      why: "devices, data and model surgery: what training is built from",
    },
    {
      name: "sdk-mid",
      files: ["sdk/train/**", "sdk/features/**", "sdk/advisor/**"],
      may: ["std", "core", "sdk-base", "sdk-mid"],
      why: "the training loop, the feature strategy and the advisor",
    },
    {
      name: "sdk-top",
      files: [
        "sdk/finetune/**",
        "sdk/client/**",
        "mod.ts",
      ],
      may: ["std", "core", "sdk-base", "sdk-mid", "sdk-top"],
      why: "fineTune() and the registry client, and the package's entry module",
    },
    {
      name: "cli",
      files: [
        "main.ts",
        "sdk/finetune.ts",
        "sdk/publish.ts",
        "registry/main.ts",
        "zoo/**",
        "web/**",
      ],
      may: ["std", "core", "sdk-base", "sdk-mid", "sdk-top", "registry", "cli"],
      why: "programs a person runs, and the zoo's recipes they train and publish",
    },
    {
      name: "registry",
      files: ["registry/**"],
      may: ["std", "core", "registry"],
      why: "the server: it shares core/ with the SDK but loads none of the SDK",
    },
    {
      name: "dev",
      files: ["tests/**", "bench/**", "tools/**", ".ci/**"],
      may: ["std", "core", "sdk-base", "sdk-mid", "sdk-top", "registry", "cli", "dev"],
      why: "tests, benchmarks and repository tools: they may import anything; nothing imports them",
    },
  ],
  // registry/seed.ts names zoo/ only in its doc examples (the caller passes the
  // entries in), so the server needs no exception to reach the zoo.
  exceptions: [
    {
      from: "registry/publish.ts",
      to: "sdk/model_layers.ts",
      why: "a publish builds the layers of model.json as tf.loadLayersModel does, to check " +
        "every weight's shape; the server loads TensorFlow.js for that check alone",
    },
  ],
  private: [
    {
      files: "sdk/finetune/**",
      importers: ["sdk/finetune/**", "sdk/finetune.ts", "mod.ts", "cli", "dev"],
      why: "fineTune() sits on top: no lower layer takes its types from it",
    },
  ],
  skip: ["node_modules/**", ".git/**", ".zoo-data/**", "**/node_modules/**"],
};
