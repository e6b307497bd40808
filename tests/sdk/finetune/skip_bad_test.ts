/**
 * `--skip-bad` on the fine-tuning command line, in a subprocess against a real
 * registry: without it a folder with a corrupt image stops before training
 * with the file's path; with it the run trains on the rest and says what it
 * skipped.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "node:path";
import pngjs from "pngjs";
import { runFinetune as cli } from "../../_helpers/cli.ts";
import { startFinetuneRegistry } from "../../_helpers/registry.ts";

// pngjs ships no types; this is the part the test uses.
interface PngModule {
  PNG: {
    new (opts: { width: number; height: number }): { data: Uint8Array };
    sync: { write(png: unknown): Uint8Array };
  };
}
const { PNG } = pngjs as unknown as PngModule;

function png(value: number): Uint8Array {
  const image = new PNG({ width: 28, height: 28 });
  image.data.fill(value);
  for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
  return new Uint8Array(PNG.sync.write(image));
}

Deno.test("finetune --skip-bad trains on a folder without its corrupt image and says which it skipped", async () => {
  const reg = await startFinetuneRegistry();
  const root = await Deno.makeTempDir({ prefix: "finetune_skip_bad_" });
  try {
    for (const [cls, base] of [["dark", 10], ["light", 200]] as const) {
      await Deno.mkdir(join(root, cls));
      for (let i = 0; i < 10; i++) await Deno.writeFile(join(root, cls, `${i}.png`), png(base + i));
    }
    const broken = join(root, "light", "broken.png");
    await Deno.writeTextFile(broken, "not a png");
    const common = [
      "--model",
      "zoo/lenet5",
      ...reg.flags,
      "--device",
      "cpu",
      "--strategy",
      "full",
      "--epochs",
      "1",
      "--out",
      `${root}-out`,
    ];

    const failed = await cli([...common, "--data", `dir:${root}`]);
    assertEquals(failed.code, 1, failed.stderr);
    assertStringIncludes(failed.stderr, `${broken}: Not a PNG or JPEG file`);
    assertStringIncludes(failed.stderr, "--skip-bad");
    assert(!failed.stderr.includes("epoch 1"), "it trained before failing");

    const skipped = await cli([...common, "--data", `dir:${root}`, "--skip-bad"]);
    assertEquals(skipped.code, 0, skipped.stderr);
    assertStringIncludes(
      skipped.stderr,
      `data: skipped 1 unreadable image(s):\n  ${broken}: Not a PNG or JPEG file`,
    );

    const notAFolder = await cli([...common, "--data", "mnist?perClass=5", "--skip-bad"]);
    assertEquals(notAFolder.code, 1);
    assertStringIncludes(
      notAFolder.stderr,
      'Cannot skip bad images of "mnist?perClass=5": skipBad applies to image folders (dir:PATH) only',
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(`${root}-out`, { recursive: true }).catch(() => {});
    await reg.close();
  }
});
