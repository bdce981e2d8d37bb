/**
 * Run by hidden-classes.test.ts with --allow-natives-syntax. Opens real checkpoints of every
 * format, then prints (as JSON) for each kind of object that a kept instance (a *_SHAPE_KEEPER)
 * stands for, whether the objects the last open made share a kept instance's hidden class.
 */

import { LISTED_TENSOR_SHAPE_KEEPER } from "../../dist/checkpoint/listed-tensor.js";
import {
  STORAGE_SHAPE_KEEPERS,
  TORCH_TENSOR_SHAPE_KEEPER,
} from "../../dist/formats/torch/storage.js";
import { TENSOR_SHORTCUT_SHAPE_KEEPERS } from "../../dist/formats/torch/torch-zip.js";
import { ZIP_SHAPE_KEEPERS } from "../../dist/formats/zip/zip.js";
import { openCheckpointFile } from "../../dist/node.js";
import { TENSOR_SHAPE_KEEPERS } from "../../dist/tensors/tensor.js";

// A V8 intrinsic, built from text so that the file parses without the flag (for the linter).
const haveSameMap = new Function("a", "b", "return %HaveSameMap(a, b);");

const files = process.argv.slice(2);
const zipTensor = TENSOR_SHORTCUT_SHAPE_KEEPERS[1];
const kept = {
  tensor: [...TENSOR_SHAPE_KEEPERS, TORCH_TENSOR_SHAPE_KEEPER, zipTensor],
  listedTensor: [LISTED_TENSOR_SHAPE_KEEPER],
  zipStorage: [zipTensor.storage],
  zipStorageGroup: [zipTensor.storage.group],
  legacyStorage: STORAGE_SHAPE_KEEPERS,
  zipArchive: ZIP_SHAPE_KEEPERS.map((k) => k.archive),
  zipDirectory: ZIP_SHAPE_KEEPERS.map((k) => k.archive.directory),
  zipNameIndex: ZIP_SHAPE_KEEPERS.map((k) => k.archive.directory.names),
};

/** The objects of each kind that opening `file` made (from its first listed tensor). */
async function madeBy(file) {
  const checkpoint = await openCheckpointFile(file);
  const listed = checkpoint.tensors()[0];
  const { tensor } = listed;
  const made = { tensor, listedTensor: listed };
  const group = tensor.storage.group;
  if (group !== undefined) {
    Object.assign(made, {
      zipStorage: tensor.storage,
      zipStorageGroup: group,
      zipArchive: group.archive,
      zipDirectory: group.archive.directory,
      zipNameIndex: group.archive.directory.names,
    });
  } else if (checkpoint.format === "torch-legacy") {
    made.legacyStorage = tensor.storage;
  }
  await checkpoint.close();
  return made;
}

// Every file once, so that whatever one format does to a class has happened, then each again.
for (const file of files) await madeBy(file);
const results = [];
for (const file of files) {
  for (const [kind, object] of Object.entries(await madeBy(file))) {
    results.push({ file, kind, shared: kept[kind].some((keeper) => haveSameMap(object, keeper)) });
  }
}
process.stdout.write(JSON.stringify(results));
