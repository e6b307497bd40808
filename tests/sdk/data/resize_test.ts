import { assert, assertEquals } from "@std/assert";
import * as tf from "@tensorflow/tfjs";
import { imagesToTensor } from "../../../sdk/data/_image.ts";
import { useCpu } from "./_fixtures.ts";

await useCpu();

/** A 7×5 RGB image whose values vary along both axes, in 0..255. */
const image = {
  width: 7,
  height: 5,
  channels: 3 as const,
  data: Uint8Array.from({ length: 7 * 5 * 3 }, (_, i) => (i * 37) % 256),
};

Deno.test("images are resized with aligned corners when the preprocessing asks, as nsfwjs feeds its checkpoints", async () => {
  const base = { height: 3, width: 4, channels: 3, range: [0, 255] } as const;
  const raw = tf.tensor4d(Float32Array.from(image.data), [1, 5, 7, 3]);
  for (const alignCorners of [true, false]) {
    const got = imagesToTensor([image], { ...base, alignCorners });
    const want = alignCorners
      ? tf.image.resizeBilinear(raw, [3, 4], true)
      : tf.image.resizeBilinear(raw, [3, 4], false, true);
    assertEquals(await got.data(), await want.data(), `alignCorners ${alignCorners}`);
    tf.dispose([got, want]);
  }
  const a = imagesToTensor([image], { ...base, alignCorners: true });
  const b = imagesToTensor([image], base);
  assert((await tf.sub(a, b).abs().max().data())[0]! > 1, "the two resizes should differ");
  tf.dispose([a, b, raw]);
});
