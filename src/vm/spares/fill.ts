/**
 * Making spares: restore VMs of a shape from its template, attach them, warm
 * each with one command (under TCG a VM's first exec pays for translating its
 * code paths) and mark them ready, until the shape has as many as wanted. One
 * filler per shape at a time, across processes (a lock it only tries); the
 * others leave the work to it. The VMs are detached: they outlive the filler.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import { MANIFEST_FILE } from "../../environment/manifest.js"
import { tryLock, withLock } from "../../host/lock.js"
import { iso, newMachineId } from "../../machine/record.js"
import { EnvironmentStore } from "../../services/EnvironmentStore.js"
import { KernelStore } from "../../services/KernelStore.js"
import { report } from "../../services/Progress.js"
import { PyroConfig } from "../../services/PyroConfig.js"
import { type BootSpec, Vmm } from "../../services/Vmm.js"
import { bootSpecFor } from "../bootSpec.js"
import { BootError } from "../errors.js"
import { selfIdentity } from "../procfs.js"
import { MAX_SOCKET_PATH } from "../vmDir.js"
import { pendingMarker } from "./spawnFiller.js"
import {
  clampSpares,
  countSpares,
  discardSpare,
  readTarget,
  reapIdleSpares,
  roomForSpare,
  spareHostOf,
  spareKey,
  spareFillLock,
  sparePaths,
  type SpareShape,
  writeSpareRecord
} from "./store.js"
import { buildIdentity, keyGuards, writeSpareIndex } from "./shapeIndex.js"
import { fillerBundle } from "./spawnFiller.js"

export interface FillResult {
  readonly key: string
  /** Spares made by this call. */
  readonly made: number
  /** Ready or being made, now. */
  readonly spares: number
  /** Another filler held the shape's lock: it does the work. */
  readonly busy: boolean
}

/** The boot spec of a spare of `shape` (network off: a spare's directory moves when claimed). */
export const spareSpec = (shape: SpareShape) =>
  Effect.gen(function*() {
    const [assets, environment] = yield* Effect.all([
      (yield* KernelStore).ensure,
      (yield* EnvironmentStore).ensure(shape.environment)
    ], { concurrency: 2 })
    return bootSpecFor("spare", assets, environment, { vcpus: shape.vcpu_count, memMib: shape.mem_mib, network: false })
  })

/** Fill `shape` up to `want` spares (or the operator's target for it, if more). */
export const fillSpares = (shape: SpareShape, want: number) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const vmm = yield* Vmm
    const spec = yield* spareSpec(shape)
    const key = spareKey(spec, spareHostOf(config, vmm.vmmExecutable))!
    yield* indexShape(shape, spec, key)
    yield* reapIdleSpares(config, vmm.vmmExecutable)
    const release = yield* tryLock(config.stateDir, spareFillLock(key))
    // Whoever started this filler has seen it take up the work (or leave it to the one that has it).
    Fs.rmSync(pendingMarker(config.stateDir, key), { force: true })
    if (Option.isNone(release)) return { key, made: 0, spares: countSpares(config.stateDir, key), busy: true }
    return yield* Effect.gen(function*() {
      // Read each time round: `pyro prepare --spares 0` may lower it meanwhile.
      const target = () => clampSpares(Math.max(want, readTarget(config.stateDir, key)))
      let made = 0
      while (countSpares(config.stateDir, key) < target()) {
        const made1 = yield* makeSpare(key, shape, spec)
        // The bounds on all spares together are reached.
        if (Option.isNone(made1)) break
        const id = made1.value
        made++
        yield* report({
          scope: "spares",
          phase: "ready",
          // `step` makes each its own line (the CLI prints a repeated event once).
          fields: { environment: shape.environment, step: `${countSpares(config.stateDir, key)}/${target()}`, spare: id }
        })
      }
      return { key, made, spares: countSpares(config.stateDir, key), busy: false } satisfies FillResult
    }).pipe(Effect.ensuring(release.value))
  })

/**
 * Let a run without the runtime find this shape's key (shapeIndex.ts): under the
 * environment's name as asked and as installed, for this build of pyro.
 */
const indexShape = (shape: SpareShape, spec: BootSpec, key: string) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const build = buildIdentity(fillerBundle())
    if (build === undefined) return
    const guards = keyGuards(spec, MANIFEST_FILE)
    for (const environment of new Set([shape.environment, spec.template?.environment ?? shape.environment])) {
      yield* writeSpareIndex(config.stateDir, {
        environment,
        vcpus: shape.vcpu_count,
        memMib: shape.mem_mib,
        cacheDir: config.cacheDir,
        kernelPath: config.kernelPath,
        kernelModulesDir: config.kernelModulesDir,
        build,
        ...spareHostOf(config, (yield* Vmm).vmmExecutable)
      }, key, guards)
    }
  })

/** Held while a filler checks the bounds on all spares and writes its new spare's first record. */
const SPARE_ROOM_LOCK = "spares.room"

const makeSpare = (key: string, shape: SpareShape, spec: BootSpec) =>
  Effect.gen(function*() {
    const config = yield* PyroConfig
    const vmm = yield* Vmm
    const id = newMachineId()
    const paths = sparePaths(config.stateDir, key, id)
    if (Buffer.byteLength(paths.channelSocket) > MAX_SOCKET_PATH) {
      return yield* new BootError({
        stage: "Prepare",
        detail: `socket path ${paths.channelSocket} is longer than ${MAX_SOCKET_PATH} bytes; set PYRO_STATE_DIR to a shorter directory`
      })
    }
    const record = { id, shape, state: "booting" as const, filler: selfIdentity(), vmm: null, created_at: iso(Date.now()) }
    // The bounds are checked and this spare counted in one step, across every filler of every shape.
    const reserved = yield* withLock(
      config.stateDir,
      SPARE_ROOM_LOCK,
      Effect.gen(function*() {
        if (!roomForSpare(config.stateDir, shape)) return false
        Fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 })
        yield* writeSpareRecord(paths, record)
        return true
      }).pipe(Effect.onError(() => Effect.sync(() => Fs.rmSync(paths.dir, { recursive: true, force: true }))))
    )
    if (!reserved) return Option.none<string>()
    return yield* Effect.gen(function*() {
      const vm = yield* vmm.bootDetached({ ...spec, id }, paths, {
        formatScratch: true,
        journaledScratch: false,
        dieWithParent: false,
        warmUp: true
      })
      yield* writeSpareRecord(paths, { ...record, state: "ready", vmm: { pid: vm.pid, startTime: vm.startTime } })
      return Option.some(id)
    }).pipe(Effect.onError(() => Effect.sync(() => discardSpare(paths.dir, vmm.vmmExecutable))))
  })
