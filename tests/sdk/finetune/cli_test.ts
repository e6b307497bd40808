/**
 * The fine-tuning command line as a user runs it, in a subprocess: --help,
 * flag errors, and each kind of bad input stopped with one clear line and a
 * non-zero exit before any training.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import { PNG } from "pngjs";
import { runFinetune as cli, type RunResult as Run } from "../../_helpers/cli.ts";
import { startFinetuneRegistry } from "../../_helpers/registry.ts";

/** The last line of stderr: the one-line error message. */
function lastLine(r: Run): string {
  return r.stderr.trim().split("\n").at(-1) ?? "";
}

function png(width: number, height: number, value: number): Uint8Array {
  const image = new PNG({ width, height });
  image.data.fill(value);
  for (let i = 3; i < image.data.length; i += 4) image.data[i] = 255;
  return new Uint8Array(PNG.sync.write(image));
}

async function tree(files: Record<string, Uint8Array>, dirs: string[] = []): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "finetune_cli_" });
  for (const d of dirs) await Deno.mkdir(join(root, d), { recursive: true });
  for (const [rel, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(root, rel, ".."), { recursive: true });
    await Deno.writeFile(join(root, rel), bytes);
  }
  return root;
}

function images(cls: string, n: number, size: number): Record<string, Uint8Array> {
  return Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`${cls}/${i}.png`, png(size, size, 20 * i)]),
  );
}

Deno.test("finetune --help lists every flag with its environment variable and default", async () => {
  const r = await cli(["--help"]);
  assertEquals(r.code, 0);
  for (
    const flag of [
      "--model",
      "--data",
      "--strategy",
      "--classifier",
      "--cut",
      "--freeze-until",
      "--epochs",
      "--batch-size",
      "--lr",
      "--base-lr-mult",
      "--head-epochs",
      "--device",
      "--input-size",
      "--resize",
      "--val-split",
      "--seed",
      "--out",
      "--resume",
      "--publish",
      "--registry",
      "--token",
      "--help",
    ]
  ) {
    assert(r.stdout.includes(flag), `--help lacks ${flag}`);
  }
  for (const env of ["ZOO_URL", "ZOO_TOKEN", "ZOO_CACHE", "ZOO_WASM_THREADS", "ZOO_OFFLINE"]) {
    assertMatch(r.stdout, new RegExp(env), `--help lacks ${env}`);
  }
  assertMatch(r.stdout, /default auto/);
  // Every flag's entry (its line and any continuation lines) gives a default or says it is required.
  const entries = r.stdout.split(/\n(?=\s+(?:-h, )?--)/).filter((e) => /^\s+--/.test(e));
  assert(entries.length >= 25, `${entries.length} flag entries`);
  for (const entry of entries) {
    const body = entry.split(/\n\s*\n/)[0]!;
    assertMatch(body, /default|required/, `no default: ${body.trim()}`);
  }
});

Deno.test("finetune refuses bad flags with one line and a non-zero exit", async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /Cannot parse the command line: .*bogus.*--help/],
    [["--data", "mnist"], /--model REF is required/],
    [["--model", "zoo/lenet5"], /--data SPEC is required/],
    [["--model", "zoo/lenet5", "--data", "mnist", "--epochs", "zero"], /Invalid --epochs "zero"/],
    [["--model", "zoo/lenet5", "--data", "mnist", "--device", "tpu"], /Invalid --device "tpu"/],
    [
      ["--model", "zoo/lenet5", "--data", "mnist", "--strategy", "magic"],
      /Invalid --strategy "magic": use one of auto, features, partial, full/,
    ],
    [
      ["--model", "zoo/lenet5", "--data", "mnist", "--input-size", "big"],
      /Invalid --input-size "big"/,
    ],
    [
      ["--model", "zoo/lenet5", "--data", "mnist", "--publish", "me/x"],
      /Invalid --publish "me\/x": use NAMESPACE\/NAME@VERSION/,
    ],
    [["--model", "zoo/lenet5", "--data", "nope"], /Invalid data spec "nope": unknown dataset/],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(args)));
  runs.forEach((r, i) => {
    assertEquals(r.code, 1, `${cases[i]![0].join(" ")}: ${r.stderr}`);
    assertMatch(lastLine(r), cases[i]![1]);
  });
});

Deno.test("finetune stops on bad input before training, with the reason", async () => {
  const reg = await startFinetuneRegistry();
  const dirs: string[] = [];
  try {
    const oneClass = await tree(images("shirts", 4, 28));
    const emptyClass = await tree(images("shirts", 4, 28), ["shoes"]);
    const unreadable = await tree({
      ...images("shirts", 4, 28),
      ...images("shoes", 3, 28),
      "shoes/broken.png": new TextEncoder().encode("not a png"),
    });
    const strides = await tree({ ...images("a", 10, 30), ...images("b", 10, 30) });
    const idx = await tree({});
    const header = (magic: number, dims: number[]) => {
      const b = new Uint8Array(4 + 4 * dims.length);
      const v = new DataView(b.buffer);
      v.setUint32(0, magic);
      dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
      return b;
    };
    await Deno.writeFile(
      join(idx, "images"),
      new Uint8Array([...header(0x803, [3, 28, 28]), ...new Uint8Array(3 * 784)]),
    );
    await Deno.writeFile(join(idx, "labels"), new Uint8Array([...header(0x801, [2]), 0, 1]));
    dirs.push(oneClass, emptyClass, unreadable, strides, idx);
    const common = [...reg.flags, "--device", "cpu"];
    const cases: [string[], RegExp][] = [
      [["--model", "zoo/nope", "--data", "mnist"], /zoo\/nope/],
      [
        ["--model", "zoo/lenet5", "--data", "mnist", "--registry", "http://127.0.0.1:9"],
        /cannot reach the registry at "http:\/\/127\.0\.0\.1:9"/,
      ],
      [["--model", "zoo/lenet5", "--data", "dir:/nonexistent/pets"], /\/nonexistent\/pets/],
      [["--model", "zoo/lenet5", "--data", `dir:${oneClass}`], /class/],
      [["--model", "zoo/lenet5", "--data", `dir:${emptyClass}`], /shoes/],
      [["--model", "zoo/lenet5", "--data", `dir:${unreadable}`], /broken\.png|cannot|Cannot/],
      [
        ["--model", "zoo/lenet5", "--data", `idx:${join(idx, "images")},${join(idx, "labels")}`],
        /3.*2|2.*3/,
      ],
      [
        ["--model", "zoo/lenet5", "--data", `dir:${strides}`],
        /Cannot .*30.*: .*(28|32).*--resize/,
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist?split=test"],
        /fixes split=test/,
      ],
      [
        [
          "--model",
          "zoo/lenet5",
          "--data",
          "mnist",
          "--publish",
          "zoo/lenet5@1.0.0",
          "--token",
          reg.token,
        ],
        /version 1\.0\.0 exists/,
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist", "--publish", "me/x@1.0.0"],
        /no token: pass --token or set ZOO_TOKEN/,
      ],
      [
        ["--model", "zoo/lenet5", "--data", "mnist?perClass=5", "--cut", "nolayer"],
        /nolayer/,
      ],
    ];
    const runs: Run[] = [];
    for (let i = 0; i < cases.length; i += 3) {
      runs.push(
        ...await Promise.all(
          cases.slice(i, i + 3).map(([args]) => {
            const a = [...common, ...args];
            // a later --registry wins in node's parseArgs, so the unreachable case overrides
            return cli(a);
          }),
        ),
      );
    }
    runs.forEach((r, i) => {
      const what = cases[i]![0].join(" ");
      assertEquals(r.code, 1, `${what}: exit ${r.code}: ${r.stderr}`);
      assertMatch(lastLine(r), cases[i]![1], `${what}: ${r.stderr}`);
      assert(!r.stderr.includes("epoch 1"), `${what} trained before failing`);
      assert(!lastLine(r).startsWith("    at "), `${what} printed a stack trace`);
    });
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
    await reg.close();
  }
});
