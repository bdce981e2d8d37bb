import { SingleBar } from "cli-progress";
import type { ProgressEvent } from "../pipeline/context.js";
import { runLoad } from "../pipeline/load.js";
import type { LoadPlan } from "../strategies/plan.js";
import type { Targets } from "../targets/types.js";
import type { TensorLike } from "../tensors/tensor-like.js";
import { openAtomicFile } from "../writers/file-sink.js";
import { writeSafetensors } from "../writers/safetensors-writer.js";
import type { ByteSink } from "../writers/sink.js";
import { formatBytes } from "./format.js";
import {
  openPair,
  type PlanCommandOptions,
  resolveCliConfig,
  targetsFromFile,
} from "./plan-command.js";

export interface LoadCommandOptions extends PlanCommandOptions {
  out?: string;
  stateOut?: string;
  mode?: "transactional" | "in_place";
}

/** Loads below this size finish before a progress bar would help. */
const PROGRESS_MIN_BYTES = 64 << 20;

function progressBar(): { update: (e: ProgressEvent) => void; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  let bar: SingleBar | undefined;
  return {
    update(event) {
      if (event.bytesTotal < PROGRESS_MIN_BYTES) return;
      if (!bar) {
        bar = new SingleBar({
          stream: process.stderr,
          format: "loading [{bar}] {percentage}% | {done}/{size} | {tensors} tensors",
          hideCursor: true,
        });
        bar.start(event.bytesTotal, 0, {
          done: formatBytes(0),
          size: formatBytes(event.bytesTotal),
          tensors: "0",
        });
      }
      bar.update(event.bytesDone, {
        done: formatBytes(event.bytesDone),
        size: formatBytes(event.bytesTotal),
        tensors: `${event.tensorsDone}/${event.tensorsTotal}`,
      });
    },
    stop: () => bar?.stop(),
  };
}

/** What `--state-out` records: the training state and what was restored of optimizer and scheduler. */
function stateRecord(plan: LoadPlan, targets: Targets, trainingState: unknown): unknown {
  const optimizer = targets.optimizer?.getState();
  return {
    strategy: plan.strategy,
    source: plan.source.file,
    trainingState,
    optimizer: plan.optimizer
      ? {
          action: plan.optimizer.action,
          type: plan.optimizer.type,
          mapping: plan.optimizer.mapping,
          groups: optimizer?.groups.map((g) => ({ params: g.params, hyper: g.hyper })) ?? [],
          parametersWithState: optimizer?.state.size ?? 0,
        }
      : null,
    scheduler: plan.scheduler
      ? { action: plan.scheduler.action, state: targets.scheduler?.getState() ?? null }
      : null,
  };
}

/** A sink whose close is held back until `commit()`, so several outputs land together. */
function deferredClose(sink: ByteSink): ByteSink & { commit(): Promise<void> } {
  return {
    write: (bytes) => sink.write(bytes),
    close: async () => {},
    abort: () => sink.abort(),
    commit: () => sink.close(),
  };
}

export async function runLoadCommand(
  options: LoadCommandOptions,
  warn: (line: string) => void,
): Promise<string> {
  const config = await resolveCliConfig(options, warn);
  if (options.mode) config.mode = options.mode;
  const { source, target } = await openPair(options);
  const bar = progressBar();
  // Temp files next to each output, opened before anything is loaded: an unwritable destination
  // fails first, and nothing is renamed into place until every output is complete.
  const sinks: (ByteSink & { commit(): Promise<void> })[] = [];
  try {
    const outSink = options.out ? deferredClose(await openAtomicFile(options.out)) : undefined;
    if (outSink) sinks.push(outSink);
    const stateSink = options.stateOut
      ? deferredClose(await openAtomicFile(options.stateOut))
      : undefined;
    if (stateSink) sinks.push(stateSink);
    const targets = await targetsFromFile(target, source);
    const { trainingState, report } = await runLoad({
      checkpoint: source,
      targets,
      config,
      onProgress: bar.update,
    });
    bar.stop();
    const plan = report.plan!;
    if (outSink) {
      const entries: [string, TensorLike][] = [];
      for (const param of targets.model.parameters()) {
        const value = await targets.model.read(param.name);
        entries.push([
          param.name,
          { dtype: param.dtype, shape: param.shape, read: async () => value },
        ]);
      }
      await writeSafetensors(outSink, entries, {
        metadata: {
          format: "pt",
          loadout_strategy: plan.strategy,
          loadout_source: plan.source.file,
        },
        order: "given",
      });
    }
    if (stateSink) {
      const record = `${JSON.stringify(stateRecord(plan, targets, trainingState), null, 2)}\n`;
      await stateSink.write(new TextEncoder().encode(record));
    }
    for (const sink of sinks) await sink.commit();
    sinks.length = 0;
    const loaded = plan.entries.filter((e) => e.action === "load").length;
    const outputs = [options.out, options.stateOut].filter(Boolean).join(" and ");
    return `${plan.strategy}: loaded ${loaded} of ${plan.entries.length} parameters (${formatBytes(report.bytesLoaded)}) from ${plan.source.file}${outputs ? `; wrote ${outputs}` : ""}`;
  } finally {
    bar.stop();
    await Promise.all(sinks.map((sink) => sink.abort()));
    await Promise.all([source.close(), target.close()]);
  }
}
