/**
 * The zoo's VGG-style net, trained on MNIST digits by `deno task zoo:train --only vggish`.
 *
 * @module
 */
import { vggish } from "../_recipes.ts";
import type { TrainRecipe } from "../_train.ts";

/** How `zoo/vggish/checkpoint/` is trained. */
export const recipe: TrainRecipe = {
  name: "vggish",
  build: () => vggish(1),
  epochs: 5,
  patience: 2,
  description:
    "A small VGG-style convnet trained on MNIST handwritten digits, classifying a 28x28 grayscale digit.",
  about: `A VGG-style net (Simonyan and Zisserman, 2014) scaled down to MNIST: stacks of 3x3 convs
with "same" padding (16, 16 | 32, 32 | 64 filters), 2x2 max pooling after each block, then
Flatten, Dense(128), Dropout(0.3) and Dense(10). Several cut points with growing receptive
fields make it the zoo's example for extracting CNN codes at an earlier layer.`,
};
