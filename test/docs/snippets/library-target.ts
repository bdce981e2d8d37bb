// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import type { ModelTarget, ParameterInfo } from "loadout";
import { LoadError, openCheckpointFile, resolveLoadingConfig, runLoad } from "loadout/node";

/** A model whose parameters are Float32Arrays in a Map: a small but complete ModelTarget. */
function mapModel(shapes: Record<string, number[]>) {
  const infos = new Map<string, ParameterInfo>();
  const values = new Map<string, Float32Array>();
  for (const [name, shape] of Object.entries(shapes)) {
    infos.set(name, { name, shape, dtype: "float32", trainable: true, kind: "parameter" });
    values.set(name, new Float32Array(shape.reduce((n, d) => n * d, 1)));
  }
  const known = (name: string) => {
    if (!infos.has(name)) throw new LoadError("UNKNOWN_PARAMETER", `no parameter '${name}'`);
    return values.get(name)!;
  };
  const target: ModelTarget = {
    parameters: () => [...infos.values()],
    read: async (name) => known(name).slice(), // a copy: the caller may keep it
    async write(next) {
      // All or nothing: check every value before changing any.
      for (const [name, value] of next) {
        if (!(value instanceof Float32Array) || value.length !== known(name).length) {
          throw new LoadError("BAD_VALUE", `wrong array for '${name}'`);
        }
      }
      const before = new Map([...next.keys()].map((name) => [name, values.get(name)!]));
      for (const [name, value] of next) values.set(name, value as Float32Array);
      // The Undo: restores exactly what was there.
      return async () => {
        for (const [name, value] of before) values.set(name, value);
      };
    },
    liveArray: (name) => values.get(name), // lets in_place loads read straight into it
    async setTrainable(names, trainable) {
      names.forEach(known);
      const before = names.map((name) => infos.get(name)!);
      for (const info of before) infos.set(info.name, { ...info, trainable });
      return async () => {
        for (const info of before) infos.set(info.name, info);
      };
    },
  };
  return { target, values };
}

// A classifier that reuses the pretrained fc and head layers of the fixtures' Net.
const { target, values } = mapModel({
  "fc.weight": [16, 8],
  "fc.bias": [16],
  "head.weight": [10, 16],
  "head.bias": [10],
});
const checkpoint = await openCheckpointFile("test/fixtures/torch/net_state_dict.pt");
try {
  const config = resolveLoadingConfig({ type: "weights_only", include: ["fc", "head"] });
  const { report } = await runLoad({ checkpoint, targets: { model: target }, config });
  console.log(`${report.tensorsLoaded} loaded; head.bias[0] = ${values.get("head.bias")![0]}`);
} finally {
  await checkpoint.close();
}
// doc:end
