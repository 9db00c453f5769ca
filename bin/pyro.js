#!/usr/bin/env node
// Starts the CLI bundle (dist/cli.cjs) with V8's code cache: parsing and compiling
// ~0.9 MB of JavaScript is much of a short command's time, and Node 20 caches
// nothing by itself. A cache is made at the exit of the first run of each
// command of each build, so it holds every function that command compiled, not
// just the top level, and kept in the user's cache directory; a cache V8 rejects
// (another Node, a damaged file) is ignored and made again. Any failure here
// only costs speed.
import { createHash } from "node:crypto"
import * as Fs from "node:fs"
import Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Vm from "node:vm"

const bundle = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli.cjs")
const source = Fs.readFileSync(bundle, "utf8")

const v8Dir = Path.join(
  process.env.PYRO_CACHE_DIR || Path.join(process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache"), "pyro"),
  "v8"
)
const buildKey = createHash("sha256").update(process.version).update(process.arch).update(source).digest("hex").slice(0, 16)
// Per command: each compiles different functions.
const command = /^[a-z]+$/.test(process.argv[2] ?? "") ? process.argv[2] : "other"
const cacheFile = Path.join(v8Dir, `cli-${buildKey}-${command}.bin`)

let cachedData
try {
  cachedData = Fs.readFileSync(cacheFile)
} catch {
  // none yet
}

const script = new Vm.Script(Module.wrap(source), { filename: bundle, cachedData })
if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", () => {
    try {
      Fs.mkdirSync(v8Dir, { recursive: true })
      const tmp = `${cacheFile}.${process.pid}.tmp`
      Fs.writeFileSync(tmp, script.createCachedData())
      Fs.renameSync(tmp, cacheFile)
      // Caches of other builds (or another Node) are dead weight.
      for (const name of Fs.readdirSync(v8Dir)) {
        if (!name.startsWith(`cli-${buildKey}-`)) Fs.rmSync(Path.join(v8Dir, name), { force: true })
      }
    } catch {
      // A read-only or full cache directory: the next run compiles again.
    }
  })
}

const cli = { exports: {} }
script.runInThisContext()(cli.exports, Module.createRequire(bundle), cli, bundle, Path.dirname(bundle))
