/**
 * Start-up sweep of VMs whose owning process died without cleaning up (kill
 * -9, power loss): one-shot VMs, and persistent VMs whose creator is gone.
 * Their QEMU normally died with its parent (parent-death signal); this kills
 * any that did not and removes the files.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { isAlive } from "./procfs.js"
import { killGroup } from "./qemu/process.js"
import { isVmmProcess } from "./vmmIdentity.js"
import { decodePersistentRecord } from "./record.js"
import { decodeEphemeralRecord, vmPaths, vmsRoot } from "./vmDir.js"
import { decodeSpareRecord, SPARE_RECORD } from "./spares/store.js"

/** A directory without a readable record younger than this may still be being created. */
const RECORD_GRACE_MS = 60_000

/** When a directory last changed (its entries, or itself: a rename), 0 if gone. */
const changedAt = (dir: string) => {
  const info = Fs.statSync(dir, { throwIfNoEntry: false })
  return info ? Math.max(info.mtimeMs, info.ctimeMs) : 0
}

/** `qemu`: the QEMU binary's real path; only a process running it (with the recorded pid and start time) is killed. */
export const sweepOrphans = (stateDir: string, qemu: string | undefined) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const root = vmsRoot(stateDir)
    const ids = yield* fs.readDirectory(root).pipe(Effect.orElseSucceed(() => []))
    const swept: Array<string> = []
    for (const id of ids) {
      const paths = vmPaths(stateDir, id)
      const text = yield* fs.readFileString(paths.record).pipe(Effect.option)
      const persistent = Option.flatMap(text, decodePersistentRecord)
      const record = Option.orElse(
        Option.map(Option.flatMap(text, decodeEphemeralRecord), (e) => ({
          owner: e.owner,
          vmm: e.vmmPid !== undefined && e.vmmStartTime !== undefined ? { pid: e.vmmPid, startTime: e.vmmStartTime } : undefined
        })),
        () => Option.map(persistent, (p) => ({ owner: p.owner, vmm: p.vmm ?? undefined }))
      )
      if (Option.isNone(record)) {
        // A claimed spare's directory changes only its ctime when it is renamed here.
        const old = Date.now() - changedAt(paths.dir) > RECORD_GRACE_MS
        // A record this version cannot read is left alone.
        if (!old || Option.isSome(text)) continue
        // A spare whose claimer was killed before writing the record: its QEMU is named by the spare's.
        const spare = Option.flatMap(Option.flatMap(
          yield* fs.readFileString(Path.join(paths.dir, SPARE_RECORD)).pipe(Effect.option),
          decodeSpareRecord
        ), (r) => Option.fromNullable(r.vmm))
        if (Option.isSome(spare) && isVmmProcess(spare.value, qemu)) killGroup(spare.value.pid, "SIGKILL")
      } else {
        if (isAlive(record.value.owner)) continue
        const vmm = record.value.vmm
        // Only a process proved to be this VM's QEMU: its pid, its start time and its executable.
        if (vmm !== undefined && isVmmProcess(vmm, qemu)) killGroup(vmm.pid, "SIGKILL")
      }
      yield* fs.remove(paths.dir, { recursive: true }).pipe(Effect.ignore)
      swept.push(id)
    }
    return swept
  })
