#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS PYRO_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node --expose-gc
// (The line above starts Node without NODE_EXTRA_CA_CERTS, which Node 20 would read and
// parse at every start, and hands its value on to the registry client, the one user of
// TLS, and back to the programs pyro runs: src/host/extraCaCerts.ts. --expose-gc lets a
// run collect the CLI's garbage while its guest boots: src/host/idleGc.ts.)
// Starts the CLI bundle (dist/cli.cjs), or first for the simple forms of `pyro run`
// the lean one that serves them on a spare VM (dist/runSpare.cjs), with V8's code cache: parsing and compiling
// ~1.7 MB of JavaScript is much of a short command's time, and Node 20 caches
// nothing by itself. A cache is made at the exit of the first run of each
// command of each build, so it holds every function that command compiled, not
// just the top level, and kept in the user's cache directory; a cache V8 rejects
// (another Node, a damaged file) is ignored and made again. Any failure here
// only costs speed. This file is on every command's path, so it loads nothing
// it can do without (node:crypto costs a few ms), and it is CommonJS (bin/package.json):
// an ES module entry point starts Node's module loader first, ~12 ms here.
"use strict"
const { isAscii } = require("node:buffer")
const Fs = require("node:fs")
const Module = require("node:module")
const Os = require("node:os")
const Path = require("node:path")
const Vm = require("node:vm")

const dist = Path.join(__dirname, "..", "dist")
const v8Dir = Path.join(
  process.env.PYRO_CACHE_DIR || Path.join(process.env.XDG_CACHE_HOME || Path.join(Os.homedir(), ".cache"), "pyro"),
  "v8"
)
/** Other builds' caches (and temp files of killed runs) untouched this long are dead weight. */
const UNUSED_FOR_MS = 7 * 24 * 3600 * 1000

/** Node's flags (its command line's and NODE_OPTIONS'), as 8 hex digits: FNV-1a, as node:crypto costs a few ms to load. */
const flagsKey = () => {
  const text = `${process.execArgv.join(" ")}\0${process.env.NODE_OPTIONS ?? ""}`
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0
  return hash.toString(16).padStart(8, "0")
}

/** Evaluate the CommonJS bundle `dist/<name>.cjs` with its code cache for `command`; its exports. */
const load = (name, command) => {
  const bundle = Path.join(dist, `${name}.cjs`)
  const fd = Fs.openSync(bundle, "r")
  const stat = Fs.fstatSync(fd)
  const bytes = Fs.readFileSync(fd)
  Fs.closeSync(fd)
  // esbuild writes ASCII (non-ASCII characters escaped), which decodes as Latin-1 many
  // times faster than as UTF-8; anything else is read as UTF-8.
  const source = isAscii(bytes) ? bytes.toString("latin1") : bytes.toString("utf8")
  // A build is this file as written (inode, size, change time: a rebuild or an install writes it
  // anew) under this Node: hashing ~1.7 MB on every start would cost more than the key is worth.
  const buildKey = [process.version, process.arch, stat.ino, stat.size, Math.trunc(stat.ctimeMs)].join("-")
  // V8 rejects a cache made under other flags (this file's --expose-gc, or `node bin/pyro.js`
  // without it): one cache per set of flags, or each would keep rewriting the other's.
  const cacheFile = Path.join(v8Dir, `${name}-${buildKey}-${flagsKey()}-${command}.bin`)

  let cachedData
  try {
    cachedData = Fs.readFileSync(cacheFile)
  } catch {
    // none yet
  }

  const script = new Vm.Script(Module.wrap(source), { filename: bundle, cachedData })
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
        for (const file of Fs.readdirSync(v8Dir)) {
          if (file.startsWith(`${name}-${buildKey}-`) && !file.endsWith(".tmp")) continue
          const path = Path.join(v8Dir, file)
          if (now - Fs.statSync(path).mtimeMs > UNUSED_FOR_MS) Fs.rmSync(path, { force: true })
        }
      } catch {
        // A read-only or full cache directory: the next run compiles again.
      }
    })
  }
  const module = { exports: {} }
  script.runInThisContext()(module.exports, Module.createRequire(bundle), module, bundle, Path.dirname(bundle))
  return module.exports
}

/**
 * The arguments of `pyro run` in the simple form a spare can serve without the CLI
 * (src/vm/spares/serveRun.ts) as `vm_run`'s input fields: `run ENV`, the sizing and
 * time options given as `--name N`, then `--` and the command. Undefined for any
 * other form (--json, a network, --help, `--name=N`, a repeated option...): the
 * CLI parses those, and prints their errors.
 */
const LEAN_OPTIONS = {
  "--vcpu-count": "vcpu_count",
  "--mem-mib": "mem_mib",
  "--timeout-seconds": "timeout_seconds",
  "--ttl-seconds": "ttl_seconds"
}
const leanRunArgs = (argv) => {
  if (argv[2] !== "run") return undefined
  const split = argv.indexOf("--", 3)
  if (split < 0 || split === argv.length - 1) return undefined
  const input = { command: argv.slice(split + 1) }
  for (let i = 3; i < split; i++) {
    const arg = argv[i]
    const field = Object.hasOwn(LEAN_OPTIONS, arg) ? LEAN_OPTIONS[arg] : undefined
    if (field !== undefined) {
      const value = argv[++i]
      if (i >= split || input[field] !== undefined || !/^[0-9]{1,9}$/.test(value)) return undefined
      input[field] = Number(value)
    } else if (!arg.startsWith("-") && input.environment === undefined) {
      input.environment = arg
    } else {
      return undefined
    }
  }
  return input.environment === undefined ? undefined : input
}

// Per command: each compiles different functions.
const command = /^[a-z]+$/.test(process.argv[2] ?? "") ? process.argv[2] : "other"
const lean = leanRunArgs(process.argv)
/** The lean run's exit code, or undefined when the CLI must run it (a missing or broken lean bundle included). */
const serveLean = async () => {
  try {
    return await load("runSpare", "run").serveRun(lean)
  } catch {
    return undefined
  }
}
/** The state directory as PyroConfigLive finds it; a wrong guess costs only speed. */
const stateDir = () =>
  process.env.PYRO_STATE_DIR
    ? Path.resolve(process.env.PYRO_STATE_DIR)
    : Path.join(process.env.XDG_STATE_HOME || Path.join(Os.homedir(), ".local", "state"), "pyro")
/**
 * Whether a spare may be waiting: fillers index every shape they fill
 * (`<state>/spares/index/`). Without one, loading the lean bundle would only delay the
 * CLI.
 */
const sparesIndexed = () => {
  try {
    return Fs.readdirSync(Path.join(stateDir(), "spares", "index")).length > 0
  } catch {
    return false
  }
}
/**
 * A run no spare serves: its VM starts from the plan of its shape's last run while the CLI
 * loads (src/entrypoints/headStart.ts); the CLI takes it over, or ends it.
 */
const runCli = () => {
  if (lean !== undefined) {
    try {
      require(Path.join(dist, "headStart.cjs")).startHead(stateDir(), lean)
    } catch {
      // no head start: the CLI starts the VM itself
    }
  }
  load("cli", command)
}
if (lean === undefined || !sparesIndexed()) {
  runCli()
} else {
  serveLean().then((served) => {
    if (served !== undefined) process.exit(served)
    runCli()
  })
}
