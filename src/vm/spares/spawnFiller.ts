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
import { configEnv } from "../../layers/PyroConfigLive.js"
import type { PyroConfigShape } from "../../services/PyroConfig.js"
import { tryLock } from "../../host/lock.js"
import { countSpares, readTarget, spareFillLock, SpareShape, sparesRoot } from "./store.js"

export const FillRequest = Schema.parseJson(Schema.Struct({ shape: SpareShape, want: Schema.Int }))

/** The fillers' stderr, shared; cut when it grows past this. */
const LOG_MAX_BYTES = 256 * 1024

export const fillerBundle = () => Path.join(packageRoot(), "dist", "spareFiller.cjs")

/** A filler started this long ago that has not taken up its work (it removes its marker then) is presumed dead. */
const PENDING_MS = 60_000

/**
 * Claim the right to start this shape's filler: an exclusive marker file, which the
 * filler removes once it holds the shape's lock (or found it held). So a burst of
 * runs starts one filler, not one each. False: a filler is already on its way.
 */
export const claimPending = (stateDir: string, key: string) => {
  const marker = pendingMarker(stateDir, key)
  Fs.mkdirSync(Path.dirname(marker), { recursive: true, mode: 0o700 })
  const age = Date.now() - (Fs.statSync(marker, { throwIfNoEntry: false })?.mtimeMs ?? 0)
  if (age >= PENDING_MS) Fs.rmSync(marker, { force: true })
  try {
    Fs.writeFileSync(marker, "", { flag: "wx", mode: 0o600 })
    return true
  } catch {
    return false
  }
}

export const pendingMarker = (stateDir: string, key: string) => Path.join(sparesRoot(stateDir), key, "filler.pending")

/** Start a filler for `shape` and let go of it. A filler that cannot start only means no spare. */
const startFiller = (config: PyroConfigShape, key: string, shape: SpareShape, want: number) =>
  Effect.sync(() => {
    if (!claimPending(config.stateDir, key)) return
    const logPath = Path.join(sparesRoot(config.stateDir), "filler.log")
    let log: number | undefined
    try {
      const size = Fs.statSync(logPath, { throwIfNoEntry: false })?.size ?? 0
      log = Fs.openSync(logPath, size > LOG_MAX_BYTES ? "w" : "a", 0o600)
      const child = spawn(process.execPath, [fillerBundle(), Schema.encodeSync(FillRequest)({ shape, want })], {
        detached: true,
        stdio: ["ignore", "ignore", log],
        env: { ...process.env, ...configEnv(config) }
      })
      child.on("error", () => Fs.rmSync(pendingMarker(config.stateDir, key), { force: true }))
      child.unref()
    } catch {
      // No filler: the next run boots as usual.
      Fs.rmSync(pendingMarker(config.stateDir, key), { force: true })
    } finally {
      if (log !== undefined) Fs.closeSync(log)
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
    if (want <= countSpares(config.stateDir, key)) return Effect.void
    // A filler at work holds the shape's lock: it will make what is missing.
    return Effect.flatMap(tryLock(config.stateDir, spareFillLock(key)), Option.match({
      onNone: () => Effect.void,
      // The process's own count: the filler adds the operator's target each time round, so
      // `pyro prepare --spares 0` stops it.
      onSome: (release) => Effect.zipRight(release, startFiller(config, key, shape, wanted))
    }))
  })
