#!/usr/bin/env node
// Starts the CLI bundle (dist/cli.cjs) with V8's code cache: parsing and compiling
// ~1.7 MB of JavaScript is much of a short command's time, and Node 20 caches
// nothing by itself. A cache is made at the exit of the first run of each
// command of each build, so it holds every function that command compiled, not
// just the top level, and kept in the user's cache directory; a cache V8 rejects
// (another Node, a damaged file) is ignored and made again. Any failure here
// only costs speed. This file is on every command's path, so it loads nothing
// it can do without (node:crypto costs a few ms).
import { isAscii } from "node:buffer"
import * as Fs from "node:fs"
import Module from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Vm from "node:vm"

const bundle = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "cli.cjs")
const fd = Fs.openSync(bundle, "r")
const stat = Fs.fstatSync(fd)
const bytes = Fs.readFileSync(fd)
Fs.closeSync(fd)
// esbuild writes ASCII (non-ASCII characters escaped), which decodes as Latin-1 many
// times faster than as UTF-8; anything else is read as UTF-8.
const source = isAscii(bytes) ? bytes.toString("latin1") : bytes.toString("utf8")

const v8Dir = Path.join(
  process.env.PYRO_CACHE_DIR || Path.join(process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache"), "pyro"),
  "v8"
)
// A build is this file as written (inode, size, change time: a rebuild or an install writes it
// anew) under this Node: hashing ~1.7 MB on every start would cost more than the key is worth.
const buildKey = [process.version, process.arch, stat.ino, stat.size, Math.trunc(stat.ctimeMs)].join("-")
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
