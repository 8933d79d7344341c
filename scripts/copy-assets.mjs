// Copies the files the library loads at run time next to its compiled code (SQL migrations, Lua
// scripts, JSON tables in data/ folders): tsc emits only JavaScript.
// Usage: node scripts/copy-assets.mjs <from> <to>
import { cpSync, statSync } from 'node:fs';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  process.stderr.write('usage: node scripts/copy-assets.mjs <from> <to>\n');
  process.exit(2);
}
// JSON only under data/: other .json files in src (the dashboard's tsconfig) are not assets.
const ASSET = /\.(sql|lua)$|[\\/]data[\\/][^\\/]+\.json$/;
cpSync(from, to, {
  recursive: true,
  filter: (path) => statSync(path).isDirectory() || ASSET.test(path),
});
