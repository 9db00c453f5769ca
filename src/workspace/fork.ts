/**
 * workspace_fork: a new workspace made from another, memory and disk, so what
 * ran in the source (shells, services, a half-done build) runs on in the copy.
 * The source is paused for the moment it takes: its disk's top layer is frozen
 * by a new one put on top (src/workspace/disk/layers.ts), its device state
 * saved to a file and its RAM file (src/vm/ramFile.ts) copied; then it runs on. The fork shares every frozen
 * layer by hard link, gets its own top layer over the frozen one, and its VM
 * starts from the saved state with its own clock, entropy and hostname. A
 * stopped source gives a fork of its disk alone, which boots when used.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { WorkspaceSnapshotError } from "../contract/errors.js"
import type { WorkspaceForkInput } from "../contract/workspace/snapshots.js"
import { iso, newMachineId, vmmAlive } from "../machine/record.js"
import { SCRATCH_DRIVE } from "../vm/qemu/args.js"
import { connectQmp } from "../vm/qemu/qmp.js"
import { layerOnTop, saveSnapshot } from "../vm/qemu/snapshot.js"
import { copyRam } from "../vm/ramFile.js"
import { addLayer, type DiskLayers } from "./disk/layers.js"
import { secretsFile } from "./secrets/store.js"
import type { Locked } from "./snapshots.js"
import { workspacePaths, type WorkspaceRecord, writeWorkspace } from "./store.js"

const QMP_TIMEOUT_MS = 10_000
/** Writing a paused guest's device state (its RAM is a file, copied apart). */
const SAVE_TIMEOUT_MS = 120_000
/** The saved state, in the fork's directory until its VM has loaded it. */
const STATE_FILE = "fork.state"

export interface ForkHost<E> {
  readonly stateDir: string
  readonly locked: Locked
  /** Start the fork's VM from `state` (the active-VM limit applies), recording it. */
  readonly resume: (record: WorkspaceRecord, state: string) => Effect.Effect<WorkspaceRecord, E, CommandExecutor.CommandExecutor>
  /** Kill whatever a fork that could not be made started, and its RAM file. */
  readonly discard: (id: string) => Effect.Effect<void>
}

const failed = (id: string, what: string) => (e: { readonly message: string }) =>
  new WorkspaceSnapshotError({ workspaceId: id, problem: "failed", detail: `fork: ${what}: ${e.message}` })

/** Files of the source the fork starts with: its secrets, diff baseline and command journal. */
const copiedFiles = (stateDir: string, id: string) => {
  const paths = workspacePaths(stateDir, id)
  return [secretsFile(paths.dir), paths.baseline, paths.baselineMissing, paths.journal]
}

/** Hard links in `toDir` to every layer of `layers` but its top (the one still written). */
const shareFrozen = (sourceId: string, fromDir: string, layers: DiskLayers, toDir: string) =>
  Effect.try({
    try: () => {
      const backing: Record<string, string | null> = {}
      for (const [layer, below] of Object.entries(layers.backing)) {
        if (layer === layers.top) continue
        Fs.linkSync(Path.join(fromDir, layer), Path.join(toDir, layer))
        backing[layer] = below
      }
      return backing
    },
    catch: (e) => failed(sourceId, "sharing the disk's layers")(e as Error)
  })

export const makeFork = <E>(host: ForkHost<E>) => {
  const save = (record: WorkspaceRecord) => writeWorkspace(host.stateDir, record).pipe(Effect.orDie)

  /**
   * The source's top layer frozen under a new one and, if it runs, at that
   * same paused instant its device state saved into `statePath` and its RAM
   * file copied to `forkRam`; then the source runs on.
   */
  const splitSource = (source: WorkspaceRecord, statePath: string, forkRam: string) =>
    Effect.gen(function*() {
      const paths = workspacePaths(host.stateDir, source.id)
      const mapError = failed(source.id, "the source's disk")
      if (!vmmAlive(source)) {
        const next = yield* addLayer(paths.dir, source.disk, source.disk.top).pipe(Effect.mapError(mapError))
        yield* save({ ...source, disk: next.layers })
        return next.layers
      }
      if (!Fs.existsSync(paths.ram)) {
        return yield* new WorkspaceSnapshotError({
          workspaceId: source.id,
          problem: "failed",
          detail: "fork: its VM was started by an older pyro, without a RAM file to copy: stop and start it first " +
            "(workspace_stop, workspace_start), or fork it stopped"
        })
      }
      return yield* Effect.scoped(Effect.gen(function*() {
        const qmp = yield* connectQmp(paths.qmpSocket, QMP_TIMEOUT_MS)
        yield* qmp.execute("stop")
        // It runs on whatever happens next.
        yield* Effect.addFinalizer(() => Effect.ignore(qmp.execute("cont")))
        const next = yield* addLayer(paths.dir, source.disk, source.disk.top)
        yield* layerOnTop(qmp, SCRATCH_DRIVE, Path.join(paths.dir, next.name)).pipe(
          Effect.tapError(() => Effect.sync(() => Fs.rmSync(Path.join(paths.dir, next.name), { force: true })))
        )
        // QEMU writes the new layer from here on, whatever happens to the fork.
        yield* save({ ...source, disk: next.layers })
        // Device state to a file, then the RAM file copied (sparse) while the VM is still paused.
        yield* saveSnapshot(qmp, statePath, SAVE_TIMEOUT_MS)
        yield* copyRam(paths.ram, forkRam)
        return next.layers
      })).pipe(Effect.mapError(mapError))
    })

  const fork = (input: WorkspaceForkInput) =>
    Effect.gen(function*() {
      const id = newMachineId()
      const paths = workspacePaths(host.stateDir, id)
      const statePath = Path.join(paths.dir, STATE_FILE)
      const make = Effect.gen(function*() {
        const made = yield* host.locked(input.workspace_id, (source) =>
          Effect.gen(function*() {
            Fs.mkdirSync(paths.dir, { mode: 0o700 })
            const frozen = source.disk.top
            const sourceLayers = yield* splitSource(source, statePath, paths.ram)
            const sourceDir = workspacePaths(host.stateDir, source.id).dir
            const backing = yield* shareFrozen(source.id, sourceDir, sourceLayers, paths.dir)
            const own = yield* addLayer(paths.dir, { top: frozen, backing }, frozen).pipe(
              Effect.mapError(failed(source.id, "the fork's disk"))
            )
            for (const file of copiedFiles(host.stateDir, source.id)) {
              if (Fs.existsSync(file)) Fs.copyFileSync(file, Path.join(paths.dir, Path.basename(file)))
            }
            const now = Date.now()
            const record: WorkspaceRecord = {
              ...source,
              id,
              name: input.name ?? source.name,
              labels: input.labels ?? source.labels,
              created_at: iso(now),
              expires_at: iso(now + source.ttl_seconds * 1000),
              last_activity_at: iso(now),
              vmm: null,
              boot_ms: null,
              disk: own.layers,
              reset_count: 0,
              last_reset_at: null,
              forked_from: source.id
            }
            yield* save(record)
            return { record, running: vmmAlive(source) }
          }))
        if (!made.running) return made.record
        return yield* host.resume(made.record, statePath).pipe(
          Effect.ensuring(Effect.sync(() => Fs.rmSync(statePath, { force: true })))
        )
      })
      // A fork that could not be made leaves nothing behind.
      return yield* make.pipe(
        Effect.onError(() =>
          Effect.zipRight(host.discard(id), Effect.sync(() => Fs.rmSync(paths.dir, { recursive: true, force: true })))
        )
      )
    })

  return { fork }
}
