/**
 * The zoo's MobileNetV2, imported from the nsfwjs npm package when a
 * registry is seeded (its weights are not committed here).
 *
 * @module
 */
import type { NsfwjsRecipe } from "../_nsfwjs_entry.ts";

/** How `zoo/mobilenet-v2` is built from `npm:nsfwjs@4.4.0`. */
export const recipe: NsfwjsRecipe = {
  name: "mobilenet-v2",
  source: "mobilenet_v2",
  description:
    "MobileNetV2 from nsfwjs 4.4.0 that sorts a 224x224 RGB image into Drawing, Hentai, Neutral, Porn or Sexy for content moderation.",
  about: `MobileNetV2 (Sandler et al., 2018; width 1.0) at 224x224 with the nsfwjs head:
AveragePooling2D(7) over the 7x7x1280 \`out_relu\` map, Flatten, Dense(256, relu), Dropout,
Dense(128, relu), Dropout, Dense(5, softmax). It is the small default model of nsfwjs; nsfwjs's
README puts its accuracy at about 90% on its own test data (not re-measured by the zoo). The
ImageNet-pretrained base was fine-tuned by the nsfw_model project, and the layers up to
\`block_10_project_BN\` ship frozen (\`trainable: false\`).`,
};
