/**
 * Start-up sweep of VMs whose owning process died without cleaning up (kill
 * -9, power loss): one-shot VMs, and persistent VMs whose creator is gone.
 * Their QEMU normally died with its parent (parent-death signal); this kills
 * any that did not and removes the files.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isAlive } from "./procfs.js"
import { killGroup } from "./qemu/process.js"
import { isVmmProcess } from "./vmmIdentity.js"
import { decodePersistentRecord } from "./record.js"
import { decodeEphemeralRecord, vmPaths, vmsRoot } from "./vmDir.js"

/** A directory without a readable record younger than this may still be being created. */
const RECORD_GRACE_MS = 60_000


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
        const info = yield* fs.stat(paths.dir).pipe(Effect.option)
        const mtime = Option.flatMap(info, (i) => i.mtime)
        const old = Option.match(mtime, { onNone: () => true, onSome: (m) => Date.now() - m.getTime() > RECORD_GRACE_MS })
        // A record this version cannot read is left alone.
        if (!old || Option.isSome(text)) continue
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
