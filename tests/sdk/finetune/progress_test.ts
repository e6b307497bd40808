/**
 * The per-epoch progress bar as a person sees it: `sdk/finetune.ts` run on a
 * pseudo-terminal (util-linux `script`), so stderr is a terminal and the
 * cli-progress bar is drawn with the epoch, loss, accuracy, images/s and ETA;
 * and with stderr piped, plain epoch lines and no bar.
 */
import { assert, assertMatch } from "@std/assert";
import {
  FINETUNE_CLI as CLI,
  finetuneEnv,
  flags,
  runCommand,
  runFinetune,
} from "../../_helpers/cli.ts";
import { startFinetuneRegistry } from "../../_helpers/registry.ts";
import { tempDir } from "../../_helpers/temp.ts";

const SCRIPT = ["/usr/bin/script", "/bin/script"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

Deno.test({
  name: "finetune draws a progress bar per epoch on a terminal, and plain lines when piped",
  ignore: SCRIPT === undefined,
}, async () => {
  await using reg = await startFinetuneRegistry();
  await using out = await tempDir("finetune_progress_");
  const args = (epochs: number) => [
    ...flags({
      model: "zoo/lenet5",
      data: "fashion-mnist?perClass=20",
      strategy: "full",
      epochs,
      "batch-size": 8,
      device: "wasm",
      "wasm-threads": 1,
    }),
    ...reg.flags,
    ...flags({ out: out.path }),
  ];
  /** Runs the CLI on a pseudo-terminal and returns what its screen showed. */
  const onTerminal = async (cliArgs: string[]) => {
    const line = [Deno.execPath(), "run", "-A", CLI, ...cliArgs].map(quote).join(" ");
    const tty = await runCommand(SCRIPT!, ["-qfec", line, "/dev/null"], {
      env: { ...finetuneEnv(), COLUMNS: "160", TERM: "xterm" },
    });
    const screen = tty.stdout;
    assert(tty.code === 0, screen);
    return screen;
  };
  const screen = await onTerminal(args(2));
  // A drawn bar: label, the bar itself, and the figures the issue asks for.
  assertMatch(
    screen,
    /epoch 1\/2 \[[█░]+\] \d+% \| loss \d+\.\d{4} \| accuracy – \| (\d+|–) img\/s \| ETA \S+/,
  );
  assertMatch(screen, /epoch 2\/2 \[[█░]+\] \d+% \| loss \d+\.\d{4} \| accuracy \d+\.\d% \|/);
  // Epoch 1's line comes before epoch 2's bar, which shows epoch 1's accuracy.
  const firstLine = screen.search(/epoch 1\/2 \(all\): loss \d+\.\d{4}, accuracy/);
  const secondBar = screen.search(/epoch 2\/2 \[/);
  assert(firstLine >= 0 && firstLine < secondBar, `out of order:\n${screen}`);
  assertMatch(screen, /test accuracy/);

  const { code, stderr } = await runFinetune(args(2));
  assert(code === 0, stderr);
  assertMatch(stderr, /^epoch 2\/2 \(all\): loss \d+\.\d{4}, accuracy .* img\/s/m);
  assert(!/\[[█░]+\]/.test(stderr), `a bar was drawn into a pipe:\n${stderr}`);

  // Resumed for a third epoch, the bar counts on from the checkpoint: "epoch 3/3", not "epoch 1/3".
  const resumedScreen = await onTerminal([...args(3), "--resume"]);
  assertMatch(
    resumedScreen,
    /epoch 3\/3 \[[█░]+\] \d+% \| loss \d+\.\d{4} \| accuracy (\d+\.\d%|–) \|/,
  );
  assert(
    !/epoch 1\/3 \[/.test(resumedScreen),
    `the resumed bar restarted at epoch 1:\n${resumedScreen}`,
  );
});
