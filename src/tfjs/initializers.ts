import * as tf from "@tensorflow/tfjs";
import { LoadError } from "../errors.js";
import type { TypedArray } from "../tensors/dtype.js";
import type { ModelWeight } from "./weights.js";

/**
 * Fresh values for a weight from its own layer's initialiser, as the layer's build() made them:
 * `kernel` from `kernelInitializer`, BatchNorm's `moving_variance` from
 * `movingVarianceInitializer`, an LSTM's weights from its cell's... A seeded initialiser gives
 * the same values again.
 */

type InitializerLike = { apply(shape: number[], dtype?: tf.DataType): tf.Tensor };

/** The layer option holding each weight's initialiser, where it is not `<camelCase>Initializer`. */
const INITIALIZER_FIELDS: Readonly<Record<string, string>> = {
  recurrent_kernel: "recurrentInitializer",
  depthwise_kernel: "depthwiseInitializer",
  pointwise_kernel: "pointwiseInitializer",
};

function camelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

function isInitializer(value: unknown): value is InitializerLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as InitializerLike).apply === "function"
  );
}

/** The objects that may hold a weight's initialiser: the layer, and an RNN layer's cell. */
function owners(weight: ModelWeight): Record<string, unknown>[] {
  const layer = weight.layer as unknown as Record<string, unknown>;
  const cell = layer.cell;
  const list = [layer];
  if (typeof cell === "object" && cell !== null) list.push(cell as Record<string, unknown>);
  return list;
}

/** An LSTM cell with unitForgetBias starts its forget gate's bias at 1 (tfjs's LSTMCell.build). */
function lstmBias(owner: Record<string, unknown>, init: InitializerLike): tf.Tensor | undefined {
  const units = owner.units;
  if (owner.unitForgetBias !== true || typeof units !== "number") return undefined;
  return tf.tidy(() =>
    tf.concat([init.apply([units]), tf.ones([units]), init.apply([units * 2])], 0),
  );
}

function initialTensor(weight: ModelWeight): tf.Tensor {
  const field =
    (Object.hasOwn(INITIALIZER_FIELDS, weight.tail)
      ? INITIALIZER_FIELDS[weight.tail]
      : undefined) ?? `${camelCase(weight.tail)}Initializer`;
  for (const owner of owners(weight)) {
    const init = owner[field];
    if (!isInitializer(init)) continue;
    const isLstmCell =
      typeof owner.getClassName === "function" && owner.getClassName() === "LSTMCell";
    const special = isLstmCell && weight.tail === "bias" ? lstmBias(owner, init) : undefined;
    return special ?? init.apply([...weight.shape], weight.dtype);
  }
  throw new LoadError(
    "NO_INITIALIZER",
    `cannot re-initialise '${weight.name}': its ${weight.layer.getClassName()} layer has no ${field}`,
    { key: weight.name, hint: "Leave it out of reset_layers, or load it from the checkpoint." },
  );
}

/** A fresh value for the weight (a new typed array of its dtype). */
export function initialValue(weight: ModelWeight): TypedArray {
  const tensor = initialTensor(weight);
  try {
    const shape = tensor.shape;
    if (shape.length !== weight.shape.length || shape.some((d, i) => d !== weight.shape[i])) {
      throw new LoadError(
        "BAD_INITIALIZER",
        `the initialiser of '${weight.name}' gave shape [${shape}], not [${weight.shape}]`,
        { key: weight.name },
      );
    }
    const values = tensor.dataSync();
    return weight.dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values);
  } finally {
    tensor.dispose();
  }
}
