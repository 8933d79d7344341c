// Copies the files the library loads at run time next to its compiled code (SQL migrations, Lua
// scripts): tsc emits only JavaScript. Usage: node scripts/copy-assets.mjs <from> <to>
import { cpSync, statSync } from 'node:fs';

const [from, to] = process.argv.slice(2);
if (!from || !to) {
  process.stderr.write('usage: node scripts/copy-assets.mjs <from> <to>\n');
  process.exit(2);
}
const ASSET = /\.(sql|lua)$/;
cpSync(from, to, {
  recursive: true,
  filter: (path) => statSync(path).isDirectory() || ASSET.test(path),
});
