/**
 * The zoo's LeNet-5, trained on MNIST digits by `deno task zoo:train --only lenet5`.
 *
 * @module
 */
import { lenet5 } from "../_recipes.ts";
import type { TrainRecipe } from "../_train.ts";

/** How `zoo/lenet5/checkpoint/` is trained. */
export const recipe: TrainRecipe = {
  name: "lenet5",
  build: () => lenet5(1),
  epochs: 8,
  patience: 2,
  description: "LeNet-5 trained on MNIST handwritten digits, classifying a 28x28 grayscale digit.",
  about: `A classic LeNet-5 (LeCun et al., 1998) with ReLU and max pooling: two 5x5 conv layers
(6 and 16 filters) each followed by 2x2 max pooling, then Flatten and three Dense layers
(120, 84, 10). Its Flatten→Dense head fixes the input at 28x28, which makes it the textbook
case for convolutionalization: the SDK turns the Dense layers into convolutions so the net runs
on larger images and gives a map of digit scores.`,
};
