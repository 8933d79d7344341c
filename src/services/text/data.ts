/**
 * The analysers' word tables live as JSON in data/ (copied beside the compiled code by
 * scripts/copy-assets.mjs), so editing a list is a data change, not a code change. Each table is
 * read and prepared on its first use, once per process: a worker that never analyses text never
 * reads them.
 */
import { readScript } from '../../core/script-files.js';

/** A getter for data/`file`, parsed and passed through `prepare` on the first call only. */
export function lazyData<T>(file: string, prepare: (raw: unknown) => T): () => T {
  let table: { value: T } | undefined;
  return () => {
    table ??= { value: prepare(JSON.parse(readScript(`./data/${file}`, import.meta.url))) };
    return table.value;
  };
}
