// Shown in docs/library.md; run by test/docs/snippets.test.ts.
// doc:start
import { formatPath, openCheckpointFile, Tensor } from "loadout/node";

const checkpoint = await openCheckpointFile("test/fixtures/torch/dtype_zoo.pt");
try {
  const list = (values: ArrayLike<number | bigint>) => Array.from(values).join(", ");
  // Every tensor in the tree with its path; nothing has been read yet.
  for (const { path, tensor } of checkpoint.tensors().slice(0, 3)) {
    console.log(
      `${formatPath(path)}: ${tensor.dtype} [${list(tensor.shape)}], ${tensor.byteLength} B`,
    );
  }
  const tensorAt = (name: string) => {
    const value = checkpoint.get([name]);
    if (!(value instanceof Tensor)) throw new Error(`${name} is not a tensor`);
    return value;
  };

  // read(): a new typed array. bfloat16 comes as raw 16-bit patterns unless converted.
  const bf16 = tensorAt("bfloat16");
  console.log(`raw bits: ${list(await bf16.read())}`);
  console.log(`as float32: ${list(await bf16.read({ dtype: "float32" }))}`);

  // readInto(): fills an array you own (allocate once, reuse), converting on the way.
  const half = tensorAt("float16");
  const into = new Float64Array(half.numel);
  await half.readInto(into, { dtype: "float64" });
  console.log(`float16 into a Float64Array: ${list(into)}`);

  // int64 reads as BigInt64Array; a non-contiguous view is gathered in logical order.
  console.log(`int64: ${list(await tensorAt("int64").read())}`);
  const transposed = tensorAt("transpose");
  console.log(`transpose, contiguous ${transposed.isContiguous}: ${list(await transposed.read())}`);

  // chunks(): a large tensor piece by piece (at most 8 MiB at a time), in bounded memory.
  let sum = 0;
  for await (const chunk of tensorAt("float32").chunks({ dtype: "float64" })) {
    for (const value of chunk as Float64Array) sum += value;
  }
  console.log(`sum of float32: ${sum}`);
} finally {
  await checkpoint.close();
}
// doc:end
