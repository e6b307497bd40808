/**
 * The zoo's small ResNet, trained on MNIST digits by `deno task zoo:train --only resnet-mini`.
 *
 * @module
 */
import { resnetMini } from "../_recipes.ts";
import type { TrainRecipe } from "../_train.ts";

/** How `zoo/resnet-mini/checkpoint/` is trained. */
export const recipe: TrainRecipe = {
  name: "resnet-mini",
  build: () => resnetMini(1),
  epochs: 8,
  patience: 3,
  description:
    "A small ResNet with BatchNormalization trained on MNIST handwritten digits, classifying a 28x28 grayscale digit.",
  about: `A small residual network (He et al., 2015): a 3x3 stem with 16 channels, three stages of
one basic block each (16, 32, 64 channels; the last two downsample by 2 through a 1x1 projection
shortcut), BatchNormalization after every conv, global average pooling and Dense(10). The
global-pool head accepts any input size that reaches the pooling, and the BatchNormalization
layers carry moving statistics that fine-tuning must handle (frozen BatchNorm stays in inference
mode).`,
};
