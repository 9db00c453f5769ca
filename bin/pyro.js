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
/** Other builds' caches (and temp files of killed runs) untouched this long are dead weight. */
const UNUSED_FOR_MS = 7 * 24 * 3600 * 1000

if (cachedData === undefined || script.cachedDataRejected) {
  process.once("exit", (code) => {
    // A usage error ran too little of the command to be worth caching.
    if (code === 2) return
    try {
      Fs.mkdirSync(v8Dir, { recursive: true })
      Fs.accessSync(v8Dir, Fs.constants.W_OK) // before paying for createCachedData
      const tmp = `${cacheFile}.${process.pid}.tmp`
      Fs.writeFileSync(tmp, script.createCachedData())
      Fs.renameSync(tmp, cacheFile)
      // Caches are read, never rewritten, so only their age tells a live build's from another
      // install's or Node's that still runs now and then.
      const now = Date.now()
      for (const name of Fs.readdirSync(v8Dir)) {
        if (name.startsWith(`cli-${buildKey}-`) && !name.endsWith(".tmp")) continue
        const path = Path.join(v8Dir, name)
        if (now - Fs.statSync(path).mtimeMs > UNUSED_FOR_MS) Fs.rmSync(path, { force: true })
      }
    } catch {
      // A read-only or full cache directory: the next run compiles again.
    }
  })
}

const cli = { exports: {} }
script.runInThisContext()(cli.exports, Module.createRequire(bundle), cli, bundle, Path.dirname(bundle))
