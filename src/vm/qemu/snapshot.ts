/**
 * VM snapshots: a running VM's RAM and device state saved to files, and a
 * freshly spawned QEMU restored from them. RAM lives in a memory-backend file
 * and stays out of the migration stream (`x-ignore-shared`): mapped shared
 * while saving, so the guest's RAM is already in its file; mapped privately
 * when restoring (copy-on-write: the file is never written, and many VMs can
 * share one). The device state goes through QMP migrate to a file of its own.
 *
 * Templates use these steps; a workspace snapshot or a fork calls them with
 * paths of its own.
 */
import * as Effect from "effect/Effect"
import type { QemuSpec } from "./args.js"
import { awaitMigration, type QmpClient, type QmpError } from "./qmp.js"

/** The QEMU spec fields that make a VM's RAM land in `ram`, so it can be saved. */
export const savingRamTo = (ram: string): Pick<QemuSpec, "memoryFile"> => ({ memoryFile: { path: ram, share: true } })

/** The QEMU spec fields that start a VM paused on `ram` (privately mapped), waiting for its device state. */
export const restoringRamFrom = (ram: string): Pick<QemuSpec, "memoryFile" | "restore"> => ({
  memoryFile: { path: ram, share: false },
  restore: true
})

/** QEMU's `exec:` migration URIs go through /bin/sh. */
const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`

/** RAM is in the memory-backend file already: the stream carries device state only. */
const leaveRamOut = (qmp: QmpClient) =>
  qmp.execute("migrate-set-capabilities", { capabilities: [{ capability: "x-ignore-shared", state: true }] })

/**
 * Pause the VM (started with `savingRamTo`) and write its device state to
 * `statePath`. It stays paused: what it has on disk now matches the saved RAM.
 */
export const saveSnapshot = (qmp: QmpClient, statePath: string, timeoutMs: number): Effect.Effect<void, QmpError> =>
  Effect.gen(function*() {
    yield* leaveRamOut(qmp)
    yield* qmp.execute("stop")
    yield* qmp.execute("migrate", { uri: `exec:cat > ${shellQuote(statePath)}` })
    yield* awaitMigration(qmp, "migrate", timeoutMs)
  })

/** Load the device state in `statePath` into a VM started with `restoringRamFrom`, and let it run. */
export const restoreSnapshot = (qmp: QmpClient, statePath: string, timeoutMs: number): Effect.Effect<void, QmpError> =>
  Effect.gen(function*() {
    yield* leaveRamOut(qmp)
    yield* qmp.execute("migrate-incoming", { uri: `exec:cat ${shellQuote(statePath)}` })
    yield* awaitMigration(qmp, "migrate-incoming", timeoutMs)
    yield* qmp.execute("cont")
  })

/**
 * Put `layer` (a qcow2 file made over the drive's current image) on top of a
 * running VM's drive: from here QEMU writes only `layer`, and the image below
 * it stays as it was at this instant. `existing`: the file is ours, made with
 * a relative backing name, and QEMU only opens it.
 */
export const layerOnTop = (qmp: QmpClient, drive: string, layer: string): Effect.Effect<void, QmpError> =>
  Effect.asVoid(qmp.execute("blockdev-snapshot-sync", { device: drive, "snapshot-file": layer, format: "qcow2", mode: "existing" }))
