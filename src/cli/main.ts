import { Command, CommanderError, Option } from "commander";
import { LoadError, LoadoutError } from "../errors.js";
import { openCheckpointFile } from "../node.js";
import { planLoad } from "../pipeline/load.js";
import { runConvertCommand } from "./convert-command.js";
import { runDiffCommand } from "./diff-command.js";
import { buildInspectReport, inspectJson, renderInspect } from "./inspect.js";
import { runLoadCommand } from "./load-command.js";
import { runMergeCommand } from "./merge-command.js";
import { OUTPUT_DTYPES, OUTPUT_FORMATS } from "./output.js";
import {
  openPair,
  planJson,
  renderPlan,
  resolveCliConfig,
  targetsFromFile,
} from "./plan-command.js";

/** Exit codes: 0 fine, 1 a difference or failed load, 2 a bad/unsafe file or bad usage. */
export const EXIT_BAD_INPUT = 2;
export const EXIT_LOAD_FAILED = 1;

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function buildProgram(): Command {
  const program = new Command("loadout")
    .description(
      "Read, check and load ML checkpoints (PyTorch, Lightning, safetensors) without executing anything in them.",
    )
    .option("--debug", "show stack traces on errors")
    .showHelpAfterError()
    .configureOutput({
      outputError: (text, write) =>
        write(text.startsWith("error:") ? `loadout: ${text.slice(7)}` : text),
    })
    .exitOverride();

  const readOptions = (command: Command) =>
    command
      .option("--strict", "refuse objects of unknown classes too")
      .addOption(
        new Option(
          "--allow-global <module.name>",
          "allow calling this global as an inert call (repeatable)",
        ).argParser(collect),
      );

  readOptions(
    program
      .command("inspect")
      .description("show a checkpoint's format, tensors, training counters and metadata")
      .argument(
        "<file>",
        "checkpoint file (.pt/.pth/.ckpt/.bin, .safetensors, or a .safetensors.index.json)",
      )
      .option("--json", "print one JSON object on stdout")
      .option("--stats", "compute each tensor's sum, min, max and mean (reads every tensor)")
      .option("--all", "list every tensor instead of folding repeated layers"),
  ).action(async (file: string, options) => {
    const checkpoint = await openCheckpointFile(file, {
      strict: options.strict === true,
      allowGlobals: options.allowGlobal ?? [],
    });
    try {
      const report = await buildInspectReport(checkpoint, options);
      process.stdout.write(
        options.json
          ? `${JSON.stringify(inspectJson(report))}\n`
          : `${renderInspect(report, options)}\n`,
      );
    } finally {
      await checkpoint.close();
    }
  });

  const pairOptions = (command: Command) =>
    command
      .requiredOption("--source <ckpt>", "checkpoint to load from")
      .requiredOption(
        "--target <ckpt>",
        "checkpoint holding the model to load into (names, shapes, current values)",
      )
      .option("--config <file>", "YAML configuration (checkpoint.loading...)")
      .addOption(
        new Option(
          "--set <key=value>",
          "override a config value, Hydra style (repeatable)",
        ).argParser(collect),
      )
      .option("--strict", "refuse objects of unknown classes in either file")
      .addOption(
        new Option(
          "--allow-global <module.name>",
          "allow calling this global as an inert call (repeatable)",
        ).argParser(collect),
      );

  pairOptions(
    program
      .command("plan")
      .description(
        "show what loading SOURCE into TARGET would do, per parameter, without changing anything",
      ),
  )
    .option("--json", "print one JSON object on stdout")
    .action(async (options) => {
      const config = await resolveCliConfig(options, warn);
      const { source, target } = await openPair(options);
      try {
        const targets = await targetsFromFile(target, source);
        const plan = await planLoad({ checkpoint: source, targets, config });
        const sizeOf = new Map(source.stateDict()?.tensors ?? []);
        process.stdout.write(
          options.json
            ? `${JSON.stringify(planJson(plan))}\n`
            : `${renderPlan(plan, (e) => (e.source ? (sizeOf.get(e.source)?.byteLength ?? 0) : 0))}\n`,
        );
        if (plan.violations.length > 0) process.exitCode = 1;
      } finally {
        await Promise.all([source.close(), target.close()]);
      }
    });

  pairOptions(
    program
      .command("load")
      .description(
        "load SOURCE into the model of TARGET with the configured strategy; all-or-nothing",
      ),
  )
    .option(
      "--out <file.safetensors>",
      "write the resulting model (every parameter) as safetensors, atomically",
    )
    .option(
      "--state-out <file.json>",
      "write the training state and what was restored of optimizer and scheduler",
    )
    .addOption(
      new Option("--mode <mode>", "transactional (default) or in_place").choices([
        "transactional",
        "in_place",
      ]),
    )
    .action(async (options) => {
      process.stdout.write(`${await runLoadCommand(options, warn)}\n`);
    });

  const dtypeOption = () =>
    new Option("--dtype <dtype>", "convert floating tensors to this dtype").choices(OUTPUT_DTYPES);

  readOptions(
    program
      .command("convert")
      .description("convert a checkpoint to safetensors (sharded if asked) or a PyTorch zip")
      .argument("<in>", "any checkpoint loadout reads")
      .argument("<out>", "output: .safetensors, .safetensors.index.json, or .pt/.pth/.bin/.ckpt"),
  )
    .addOption(
      new Option("--include <glob>", "keep only matching keys (repeatable)").argParser(collect),
    )
    .addOption(new Option("--exclude <glob>", "drop matching keys (repeatable)").argParser(collect))
    .addOption(
      new Option(
        "--strip-prefix <prefix>",
        "remove a leading prefix from keys (repeatable)",
      ).argParser(collect),
    )
    .addOption(dtypeOption())
    .option(
      "--shard-size <size>",
      "split safetensors output into shards of at most this size (2GB)",
    )
    .addOption(
      new Option("--format <format>", "output format (default: by OUT's extension)").choices(
        OUTPUT_FORMATS,
      ),
    )
    .option(
      "--state-dict-only",
      "torch output: write only the model state dict, not the whole checkpoint",
    )
    .action(async (input: string, output: string, options) => {
      process.stdout.write(`${await runConvertCommand(input, output, options, warn)}\n`);
    });

  readOptions(
    program
      .command("merge")
      .description("merge the model state dicts of several checkpoints (later wins, or --average)")
      .argument("<checkpoints...>", "two or more checkpoints"),
  )
    .requiredOption(
      "--out <file>",
      "output: .safetensors or .pt/.pth/.bin/.ckpt, written atomically",
    )
    .option("--average", "weighted average of every tensor (every file must hold every key)")
    .option("--weights <list>", "--average weights, one per input: 0.5,0.3,0.2 (default equal)")
    .addOption(dtypeOption())
    .action(async (inputs: string[], options) => {
      process.stdout.write(`${await runMergeCommand(inputs, options)}\n`);
    });

  readOptions(
    program
      .command("diff")
      .description("compare two checkpoints' tensors; exit 0 when equal, 1 when different")
      .argument("<a>", "first checkpoint")
      .argument("<b>", "second checkpoint"),
  )
    .option("--json", "print one JSON object on stdout")
    .option("--atol <x>", "absolute tolerance (default 0)")
    .option("--rtol <y>", "relative tolerance (default 0)")
    .option("--all", "compare every tensor of the tree by path, optimizer state too")
    .action(async (a: string, b: string, options) => {
      const { text, equal } = await runDiffCommand(a, b, options);
      process.stdout.write(`${text}\n`);
      if (!equal) process.exitCode = 1;
    });

  return program;
}

function warn(line: string): void {
  process.stderr.write(`loadout: warning: ${line}\n`);
}

/** Runs the CLI; returns the exit code. Errors print as `loadout: <message>`, stacks only with --debug. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes("--debug");
  // Commands set process.exitCode for "ran fine, but the answer is no" (a plan with violations,
  // a diff): start clean so an earlier call in the same process does not leak into this one.
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv, { from: "user" });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : EXIT_BAD_INPUT;
    }
    if (error instanceof LoadoutError) {
      process.stderr.write(`loadout: ${error.message}\n`);
      if (debug) process.stderr.write(`${error.stack}\n`);
      // A well-formed request the checkpoint cannot satisfy is 1; a bad or unsafe input is 2.
      return error instanceof LoadError ? EXIT_LOAD_FAILED : EXIT_BAD_INPUT;
    }
    const err = error as NodeJS.ErrnoException;
    if (err?.code === "ENOENT" || err?.code === "EACCES" || err?.code === "EISDIR") {
      process.stderr.write(
        `loadout: cannot open ${err.path ?? "file"}: ${err.code === "ENOENT" ? "no such file" : err.message}\n`,
      );
      if (debug) process.stderr.write(`${err.stack}\n`);
      return EXIT_BAD_INPUT;
    }
    process.stderr.write(
      `loadout: internal error: ${(error as Error)?.message ?? String(error)}\n`,
    );
    process.stderr.write(
      debug
        ? `${(error as Error)?.stack}\n`
        : "Run again with --debug for the stack trace, and please report it.\n",
    );
    return 1;
  }
}
