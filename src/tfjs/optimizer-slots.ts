import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import { formatShape, sameShape } from "../tensors/shape.js";
import {
  collectedTrainableWeights,
  compiledOptimizer,
  type LayersModel,
  type LayerVariable,
  numberField,
  type Optimizer,
  optimizerFields,
  type SlotEntry,
  setSlotArray,
  slotArray,
} from "./internals.js";

/**
 * A tfjs optimizer keeps its per-weight state ("slots": Adam's m and v...) in arrays indexed by
 * the position of each variable in the list training hands it, not by name. That list is the
 * model's trainable weights, so freezing a layer shifts every position after it and the next
 * step pairs slots with the wrong weights ("Operands could not be broadcast"). This module
 * records which weight each position belongs to, moves slots when the list changes, and keeps
 * the slots of frozen weights aside (as PyTorch keeps a frozen parameter's state) until they
 * are trainable again.
 */

/** One slot array of an optimizer class. */
export interface SlotField {
  /** The optimizer's array field. */
  field: string;
  /** What tfjs appends to a variable's name for this slot. */
  suffix: string;
  /** The value a fresh slot starts at (default 0; Adagrad starts at initialAccumulatorValue). */
  initial?: (optimizer: Optimizer) => number;
  /** Whether the optimizer uses this array (RMSProp's mean gradients only when centered). */
  used?: (optimizer: Optimizer) => boolean;
}

const SLOT_FIELDS: Readonly<Record<string, readonly SlotField[]>> = {
  SGD: [],
  Momentum: [{ field: "accumulations", suffix: "momentum" }],
  Adam: [
    { field: "accumulatedFirstMoment", suffix: "m" },
    { field: "accumulatedSecondMoment", suffix: "v" },
  ],
  RMSProp: [
    { field: "accumulatedMeanSquares", suffix: "rms" },
    { field: "accumulatedMoments", suffix: "momentum" },
    {
      field: "accumulatedMeanGrads",
      suffix: "mg",
      used: (optimizer) => optimizerFields(optimizer).centered === true,
    },
  ],
  Adagrad: [
    {
      field: "accumulatedGrads",
      suffix: "accumulator",
      initial: (optimizer) => numberField(optimizer, "initialAccumulatorValue"),
    },
  ],
  Adamax: [
    { field: "accumulatedFirstMoment", suffix: "m" },
    { field: "accumulatedWeightedInfNorm", suffix: "v" },
  ],
  Adadelta: [
    { field: "accumulatedGrads", suffix: "accum_grad" },
    { field: "accumulatedUpdates", suffix: "accum_var" },
  ],
};

/** The slot arrays of an optimizer this module knows, or a LoadError. */
export function slotFieldsOf(optimizer: Optimizer): readonly SlotField[] {
  const className = optimizer.getClassName();
  const fields = Object.hasOwn(SLOT_FIELDS, className) ? SLOT_FIELDS[className] : undefined;
  if (!fields) {
    throw new LoadError(
      "UNSUPPORTED_OPTIMIZER",
      `loadout cannot keep a tfjs ${className} optimizer's state in step with the model`,
      { hint: `Supported: ${Object.keys(SLOT_FIELDS).join(", ")}.` },
    );
  }
  return fields.filter((f) => f.used?.(optimizer) ?? true);
}

/** Where each weight's slots are: the weight at each position, and the slots set aside. */
interface SlotBook {
  layout: LayerVariable[];
  stash: Map<LayerVariable, Map<string, SlotEntry>>;
}

const books = new WeakMap<Optimizer, SlotBook>();
const attached = new WeakMap<LayersModel, Set<Optimizer>>();

/** Makes setTrainable on `model` keep `optimizer`'s slots in step too (besides the compiled one). */
export function attachOptimizer(model: LayersModel, optimizer: Optimizer): void {
  const set = attached.get(model) ?? new Set<Optimizer>();
  set.add(optimizer);
  attached.set(model, set);
}

/** The optimizers whose slots follow `model`'s trainable weights. */
export function optimizersOf(model: LayersModel): Optimizer[] {
  const found = new Set<Optimizer>(attached.get(model) ?? []);
  const compiled = compiledOptimizer(model);
  if (compiled) found.add(compiled);
  return [...found];
}

/**
 * The variables training hands the optimizer, in order: after compile(), fit() passes the
 * weights compile() collected, trainable ones first and then (with no gradient, but still given
 * slots) those frozen since; without compile, the model's trainable weights.
 */
export function trainingOrder(model: LayersModel): LayerVariable[] {
  const collected = collectedTrainableWeights(model);
  if (!collected) return [...model.trainableWeights];
  return [...collected.filter((w) => w.trainable), ...collected.filter((w) => !w.trainable)];
}

/** Throws unless every existing slot has the shape of the weight at its position. */
function checkLayout(optimizer: Optimizer, layout: readonly LayerVariable[]): void {
  for (const { field } of slotFieldsOf(optimizer)) {
    const entries = slotArray(optimizer, field);
    const problem = (what: string) =>
      new LoadError(
        "OPTIMIZER_OUT_OF_STEP",
        `the ${optimizer.getClassName()} optimizer's ${field} ${what}`,
        {
          hint: "Its state no longer matches the model's trainable weights (layers were frozen or unfrozen outside loadout). Reset the optimizer, or freeze through loadout.",
        },
      );
    if (entries.length > layout.length) {
      throw problem(`holds ${entries.length} slots for ${layout.length} trainable weights`);
    }
    entries.forEach((entry, i) => {
      if (entry && !sameShape(entry.variable.shape, layout[i]!.shape as number[])) {
        throw problem(
          `slot ${i} has shape ${formatShape(entry.variable.shape)} but weight '${layout[i]!.originalName}' has ${formatShape(layout[i]!.shape as number[])}`,
        );
      }
    });
  }
}

/** The optimizer's book, inferred from the model (and checked) the first time it is needed. */
export function bookOf(optimizer: Optimizer, model: LayersModel): SlotBook {
  const known = books.get(optimizer);
  const book = known ?? { layout: trainingOrder(model), stash: new Map() };
  checkLayout(optimizer, book.layout);
  if (!known) books.set(optimizer, book);
  return book;
}

/** Every weight's slots, wherever they are (at a position, or set aside while frozen). */
export function slotsByWeight(
  optimizer: Optimizer,
  model: LayersModel,
): Map<LayerVariable, Map<string, SlotEntry>> {
  const book = bookOf(optimizer, model);
  const result = new Map<LayerVariable, Map<string, SlotEntry>>();
  for (const [weight, slots] of book.stash) result.set(weight, new Map(slots));
  for (const { field } of slotFieldsOf(optimizer)) {
    slotArray(optimizer, field).forEach((entry, i) => {
      const weight = book.layout[i];
      if (!entry || !weight) return;
      const slots = result.get(weight) ?? new Map<string, SlotEntry>();
      slots.set(field, entry);
      result.set(weight, slots);
    });
  }
  return result;
}

/** A new slot for `weight`, as tfjs would create it on the weight's first step. */
export function freshSlot(
  optimizer: Optimizer,
  field: SlotField,
  weight: LayerVariable,
): SlotEntry {
  const initial = field.initial?.(optimizer) ?? 0;
  const shape = weight.shape as number[];
  return {
    originalName: `${weight.name}/${field.suffix}`,
    variable: tf.tidy(() => tf.fill(shape, initial, "float32").variable(false)),
  };
}

/**
 * Puts each weight's slots at its position in `layout`, sets aside the slots of weights not in
 * it, and gives weights without slots fresh ones when others have some (the arrays stay dense:
 * tfjs's getWeights and dispose assume it). Returns the slots it created.
 */
export function installSlots(
  optimizer: Optimizer,
  layout: readonly LayerVariable[],
  byWeight: ReadonlyMap<LayerVariable, ReadonlyMap<string, SlotEntry>>,
): SlotEntry[] {
  const created: SlotEntry[] = [];
  const inLayout = new Set(layout);
  for (const field of slotFieldsOf(optimizer)) {
    const placed = layout.map((weight) => byWeight.get(weight)?.get(field.field));
    const any = placed.some((entry) => entry !== undefined);
    const entries = any
      ? placed.map((entry, i) => {
          if (entry) return entry;
          const fresh = freshSlot(optimizer, field, layout[i]!);
          created.push(fresh);
          return fresh;
        })
      : [];
    setSlotArray(optimizer, field.field, entries);
  }
  const stash = new Map<LayerVariable, Map<string, SlotEntry>>();
  for (const [weight, slots] of byWeight) {
    if (!inLayout.has(weight) && slots.size > 0) stash.set(weight, new Map(slots));
  }
  books.set(optimizer, { layout: [...layout], stash });
  return created;
}

/** References to an optimizer's slots (no copies), to put them back exactly. */
export interface SlotReferences {
  optimizer: Optimizer;
  arrays: Map<string, (SlotEntry | undefined)[]>;
  book: SlotBook | undefined;
}

export function captureSlotReferences(optimizer: Optimizer): SlotReferences {
  const arrays = new Map<string, (SlotEntry | undefined)[]>();
  for (const { field } of slotFieldsOf(optimizer)) {
    arrays.set(field, [...slotArray(optimizer, field)]);
  }
  const book = books.get(optimizer);
  return {
    optimizer,
    arrays,
    book: book && { layout: [...book.layout], stash: new Map(book.stash) },
  };
}

/** Puts back captured slots; slots created since (and not captured) are disposed. */
export function restoreSlotReferences(captured: SlotReferences): void {
  const { optimizer } = captured;
  const kept = new Set<SlotEntry>();
  for (const entries of captured.arrays.values()) for (const e of entries) if (e) kept.add(e);
  for (const slots of captured.book?.stash.values() ?? [])
    for (const e of slots.values()) kept.add(e);
  const current = books.get(optimizer);
  const live: SlotEntry[] = [];
  for (const { field } of slotFieldsOf(optimizer)) {
    for (const e of slotArray(optimizer, field)) if (e) live.push(e);
  }
  for (const slots of current?.stash.values() ?? []) live.push(...slots.values());
  for (const entry of live) if (!kept.has(entry)) entry.variable.dispose();
  for (const [field, entries] of captured.arrays) setSlotArray(optimizer, field, [...entries]);
  if (captured.book) books.set(optimizer, captured.book);
  else books.delete(optimizer);
}

/** Disposes every slot of the optimizer (at a position or set aside) and forgets its layout. */
export function disposeAllSlots(optimizer: Optimizer, model: LayersModel): void {
  for (const slots of slotsByWeight(optimizer, model).values()) {
    for (const entry of slots.values()) entry.variable.dispose();
  }
  for (const { field } of slotFieldsOf(optimizer)) setSlotArray(optimizer, field, []);
  books.set(optimizer, { layout: trainingOrder(model), stash: new Map() });
}

/** Sets the slot arrays and the set-aside slots exactly as given (for an Undo). */
export function setSlotsExactly(
  optimizer: Optimizer,
  layout: readonly LayerVariable[],
  arrays: ReadonlyMap<string, (SlotEntry | undefined)[]>,
  stash: ReadonlyMap<LayerVariable, ReadonlyMap<string, SlotEntry>>,
): void {
  for (const { field } of slotFieldsOf(optimizer)) {
    setSlotArray(optimizer, field, [...(arrays.get(field) ?? [])]);
  }
  books.set(optimizer, {
    layout: [...layout],
    stash: new Map([...stash].map(([weight, slots]) => [weight, new Map(slots)])),
  });
}

/** The book's layout and set-aside slots (copies of the references). */
export function bookContents(
  optimizer: Optimizer,
  model: LayersModel,
): { layout: LayerVariable[]; stash: Map<LayerVariable, Map<string, SlotEntry>> } {
  const book = bookOf(optimizer, model);
  return {
    layout: [...book.layout],
    stash: new Map([...book.stash].map(([weight, slots]) => [weight, new Map(slots)])),
  };
}
