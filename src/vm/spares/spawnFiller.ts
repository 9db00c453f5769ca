/**
 * Refilling spares in the background without a daemon: a detached process
 * (`dist/spareFiller.cjs`) that fills one shape and exits. The CLI's run ends
 * at once; the spare it used is replaced behind it.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { packageRoot } from "../../host/packageRoot.js"
import type { PyroConfigShape } from "../../services/PyroConfig.js"
import { countSpares, readTarget, SpareShape, sparesRoot } from "./store.js"

export const FillRequest = Schema.parseJson(Schema.Struct({ shape: SpareShape, want: Schema.Int }))

/** The fillers' stderr, shared; cut when it grows past this. */
const LOG_MAX_BYTES = 256 * 1024

/**
 * The variables that make another pyro process (a spare filler) see what this
 * one sees: the same directories, QEMU, kernel, disks and spare lifetime, even
 * where this process's config came from options rather than the environment.
 */
const configEnv = (config: PyroConfigShape): Record<string, string> => ({
  PYRO_STATE_DIR: config.stateDir,
  PYRO_CACHE_DIR: config.cacheDir,
  PYRO_ACCEL: config.accel,
  PYRO_QEMU: config.qemuBinary,
  PYRO_BOOT_TIMEOUT_SECONDS: String(config.bootTimeoutMs / 1000),
  PYRO_SCRATCH_MIB: String(config.scratchMib),
  PYRO_COLD_BOOT: config.templates ? "0" : "1",
  PYRO_SPARE_IDLE_SECONDS: String(config.spareIdleSeconds),
  ...Option.match(config.kernelPath, { onNone: () => ({}), onSome: (p) => ({ PYRO_KERNEL: p }) }),
  ...Option.match(config.kernelModulesDir, { onNone: () => ({}), onSome: (p) => ({ PYRO_KERNEL_MODULES: p }) })
})

export const fillerBundle = () => Path.join(packageRoot(), "dist", "spareFiller.cjs")

/** Start a filler for `shape` and let go of it. A filler that cannot start only means no spare. */
export const startFiller = (config: PyroConfigShape, shape: SpareShape, want: number) =>
  Effect.sync(() => {
    try {
      const root = sparesRoot(config.stateDir)
      Fs.mkdirSync(root, { recursive: true, mode: 0o700 })
      const logPath = Path.join(root, "filler.log")
      const size = Fs.statSync(logPath, { throwIfNoEntry: false })?.size ?? 0
      const log = Fs.openSync(logPath, size > LOG_MAX_BYTES ? "w" : "a", 0o600)
      const child = spawn(process.execPath, [fillerBundle(), Schema.encodeSync(FillRequest)({ shape, want })], {
        detached: true,
        stdio: ["ignore", "ignore", log],
        env: { ...process.env, ...configEnv(config) }
      })
      Fs.closeSync(log)
      child.on("error", () => {})
      child.unref()
    } catch {
      // No filler: the next run boots as usual.
    }
  })

/**
 * After a run of a shape that can have spares: if it has fewer than wanted (`wanted`
 * by the process, or the operator's `pyro prepare --spares`), a filler makes more in
 * the background.
 */
export const refillShape = (config: PyroConfigShape, key: string, shape: SpareShape, wanted: number) =>
  Effect.suspend(() => {
    const want = Math.max(wanted, readTarget(config.stateDir, key))
    return want > countSpares(config.stateDir, key) ? startFiller(config, shape, want) : Effect.void
  })
