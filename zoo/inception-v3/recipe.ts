/**
 * The zoo's InceptionV3, imported from the nsfwjs npm package when a
 * registry is seeded (its weights are not committed here).
 *
 * @module
 */
import type { NsfwjsRecipe } from "../_nsfwjs_entry.ts";

/** How `zoo/inception-v3` is built from `npm:nsfwjs@4.4.0`. */
export const recipe: NsfwjsRecipe = {
  name: "inception-v3",
  source: "inception_v3",
  description:
    "InceptionV3 from nsfwjs 4.4.0 that sorts a 299x299 RGB image into Drawing, Hentai, Neutral, Porn or Sexy for content moderation.",
  about: `InceptionV3 (Szegedy et al., 2015) at 299x299 with the nsfwjs head: AveragePooling2D
over the 8x8x2048 \`mixed10\` map, Flatten, Dense(256, relu), Dropout, Dense(128, relu), Dropout,
Dense(5, softmax). It is the large model of nsfwjs (nsfwjs's README does not state its accuracy
separately). The ImageNet-pretrained base was fine-tuned by the nsfw_model project, and the first
layers ship frozen (\`trainable: false\`), as listed below.`,
};
