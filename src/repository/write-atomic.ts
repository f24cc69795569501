// Files the repository holds (models, variant.yaml, profiles) are replaced whole or not at all: a reader,
// or a crash mid-write, never sees half a file.
import fs from "node:fs/promises";

/** Writes `data` via a temp file and a rename, so an interrupted write never leaves a half file. */
export async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
