// An independent C2PA reader for tests/test_c2pa.py: TrustNXT's c2pa-ts, a pure TypeScript
// implementation (no c2pa-rs inside, unlike c2pa-python). Usage:
//   node c2pa_ts_read.mjs NODE_MODULES FILE...
// prints {FILE: {valid, codes, tm: {label: {key: use}}}} as JSON ("error" when unread).
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, ...files] = process.argv.slice(2);
const lib = (part) => import(pathToFileURL(join(modules, '@trustnxt/c2pa-ts/dist', part, 'index.js')).href);
const { BMFF, JPEG, PNG } = await lib('asset');
const { SuperBox } = await lib('jumbf');
const { ManifestStore } = await lib('manifest');

const out = {};
for (const file of files) {
  const buf = await fs.readFile(file);
  const Kind = [JPEG, PNG, BMFF].find((k) => k.canRead(buf));
  if (!Kind) { out[file] = { error: 'format not supported by c2pa-ts' }; continue; }
  const asset = new Kind(buf);
  const jumbf = asset.getManifestJUMBF();
  if (!jumbf) { out[file] = { error: 'no manifest' }; continue; }
  const store = ManifestStore.read(SuperBox.fromBuffer(jumbf));
  const result = await store.validate(asset);
  const tm = {};
  for (const a of store.getActiveManifest().assertions.assertions) {
    if (a.label && a.label.endsWith('.training-mining')) {
      tm[a.label] = Object.fromEntries(Object.entries(a.entries).map(([k, v]) => [k, v.choice]));
    }
  }
  out[file] = { valid: result.isValid, codes: result.statusEntries.map((e) => e.code), tm };
}
console.log(JSON.stringify(out));
