/**
 * Builds the zoo entries imported from `npm:nsfwjs@4.4.0` in memory: the
 * model.json and weights exactly as nsfwjs ships them (uint8-quantized, one
 * min/scale per tensor), re-cut into 4 MiB `.bin` shards, with a card and a
 * README. Private to `zoo/`.
 *
 * @module
 */
import { analyze } from "../core/arch/analyze.ts";
import { artifactsToFiles, type CheckpointFile } from "../sdk/client/mod.ts";
import type { ModelJson } from "../core/model_json.ts";
import { renderReadme, type ZooCard } from "./_checkpoint.ts";
import {
  NSFWJS_CLASSES,
  type NsfwjsModelName,
  nsfwjsPreprocessing,
  readNsfwjsModel,
} from "./nsfwjs/source.ts";

/** The nsfwjs package the entries come from. */
export const NSFWJS_PACKAGE = "nsfwjs@4.4.0";

/** How one entry is imported from nsfwjs. */
export interface NsfwjsRecipe {
  /** The entry's name in the zoo, e.g. `mobilenet-v2`. */
  name: string;
  /** Which nsfwjs checkpoint. */
  source: NsfwjsModelName;
  /** One sentence for the card. */
  description: string;
  /** A paragraph for the README. */
  about: string;
}

const LIMITATIONS =
  `Intended use: content moderation, sorting an image into one of five classes: **Drawing**
(safe-for-work drawings and illustrations, including anime), **Hentai** (pornographic drawings and
anime), **Neutral** (safe-for-work photographs), **Porn** (pornographic photographs, sexual acts)
and **Sexy** (sexually explicit or provocative images that are not pornography). Use the
probabilities as a signal for a moderation queue or a blur-until-clicked filter, with thresholds
chosen on your own data and people reviewing what matters; and as a pretrained base for
fine-tuning on related moderation tasks.

Not for: identifying or recognizing people, inferring age, gender, ethnicity or any other
attribute of a person, surveillance, or legal, disciplinary or law-enforcement decisions (for
instance deciding whether an image is illegal). The classes are subjective and overlap (Sexy
against Porn, Drawing against Hentai), and the model is wrong on a noticeable share of images:
nsfwjs reports about 90% accuracy for its small model on its own data.

Known biases and limits: the training images were scraped from the web (via the
nsfw_data_scraper and nsfw_model projects) and are not published, so their make-up cannot be
audited; models of this kind are known to flag swimwear, skin tones, breastfeeding, medical and
art images unevenly and to mislabel people of some skin tones and body types more often than
others. Images are squashed to a square without keeping the aspect ratio, so small regions of
large images are easily missed. The zoo has not re-measured the accuracy; evaluate on your own
data before relying on it.`;

/** The frozen prefix of a Keras topology: the last layer marked `trainable: false` and how many are. */
function frozenLayers(modelJson: ModelJson): { count: number; total: number; last: string | null } {
  const topology = modelJson.modelTopology as {
    model_config?: { config?: { layers?: { name: string; config?: { trainable?: boolean } }[] } };
  };
  const layers = topology.model_config?.config?.layers ?? [];
  const frozen = layers.filter((l) => l.config?.trainable === false);
  return { count: frozen.length, total: layers.length, last: frozen.at(-1)?.name ?? null };
}

/**
 * Builds one nsfwjs entry's files (`model.json`, shards, `README.md`) and card.
 *
 * @param recipe the entry
 * @param version the version it is published at
 * @returns the files and the card
 * @throws {Error} when the nsfwjs package is not installed
 */
export async function buildNsfwjsEntry(
  recipe: NsfwjsRecipe,
  version: string,
): Promise<{ files: CheckpointFile[]; card: ZooCard }> {
  const { modelJson, weightData } = await readNsfwjsModel(recipe.source);
  const keras = (modelJson.modelTopology as { keras_version?: string }).keras_version ?? "unknown";
  const files = artifactsToFiles({
    modelTopology: modelJson.modelTopology as object,
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights) as never,
    weightData,
    format: "layers-model",
    generatedBy: `keras v${keras}`,
    convertedBy: `${NSFWJS_PACKAGE} (dist/models/${recipe.source}), shards re-cut by the zoo`,
  });
  const pre = nsfwjsPreprocessing(recipe.source);
  const arch = analyze(modelJson);
  const frozen = frozenLayers(modelJson);
  const sourcePath = `node_modules/nsfwjs/dist/models/${recipe.source}/`;
  const card: ZooCard = {
    task: "image-classification",
    labels: [...NSFWJS_CLASSES],
    description: recipe.description,
    dataset: {
      name: "nsfw_data_scraper images (via GantMan/nsfw_model)",
      published: false,
      note: "not distributed with the weights; nsfwjs describes it as 60+ GB of scraped images",
    },
    datasetSize: null,
    license: "MIT",
    source:
      `npm:${NSFWJS_PACKAGE}, ${sourcePath} (model.min.js and its group1-shard*.min.js bundles); https://github.com/infinitered/nsfwjs`,
    preprocessing: {
      height: pre.inputSize,
      width: pre.inputSize,
      channels: 3,
      range: pre.valueRange,
      channelOrder: "rgb",
      alignCorners: true,
      resize:
        "bilinear with aligned corners to a square (tf.image.resizeBilinear(img, [size, size], true)), aspect ratio not kept; skipped when the image is already that size",
    },
    metrics: [],
    parent: null,
    sourceStats: null,
    sourceStatsNote:
      "The nsfwjs training images are not published, so no code statistics over the source data can be computed",
    quantization: {
      dtype: "uint8",
      scheme:
        "affine per tensor (value = min + scale * byte), kept as the nsfwjs manifest declares it; tfjs dequantizes to float32 on load",
    },
    frozenLayers: {
      count: frozen.count,
      total: frozen.total,
      upTo: frozen.last,
      note: "nsfwjs ships these layers with trainable: false",
    },
  };
  const readme = renderReadme({
    name: recipe.name,
    version,
    card,
    arch,
    about: `${recipe.about}

Source: \`npm:${NSFWJS_PACKAGE}\` (MIT, Infinite Red), \`${sourcePath}\`, where nsfwjs wraps
model.json and each weight shard in a JavaScript bundle. The zoo publishes the same topology and
the same weight bytes, re-cut into 4 MiB \`.bin\` shards: the weights stay uint8-quantized with one min/scale pair per tensor, as the nsfwjs
manifest declares (about 4x smaller than float32), and TensorFlow.js dequantizes them when it
loads the model, giving exactly the predictions of nsfwjs's own loader.

Frozen layers: ${frozen.count} of the ${frozen.total} layers, up to \`${frozen.last}\`, ship with
\`trainable: false\`.`,
    limitations: LIMITATIONS,
    rebuild: `Built in memory from the installed package when a registry is seeded
(\`zooEntries()\` in \`zoo/mod.ts\`), or published to any registry with:

\`\`\`sh
deno task zoo:publish --url http://localhost:8000 --token "$ZOO_TOKEN" --only ${recipe.name}
\`\`\``,
    exampleInput: [1, pre.inputSize, pre.inputSize, 3],
  });
  files.push({ path: "README.md", bytes: new TextEncoder().encode(readme) });
  return { files, card };
}
