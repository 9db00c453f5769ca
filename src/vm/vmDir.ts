/**
 * A VM's files on the host: `<stateDir>/vms/<id>/` with its record, sockets,
 * console log and scratch disk. An ephemeral VM's directory is a scoped
 * resource, removed with everything in it when the run ends; `vm.json` names
 * the owning process so a later start-up can sweep what a killed one left.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { writeFileAtomic } from "../host/files.js"
import { machineKind } from "../machine/limit.js"
import { BootError } from "./errors.js"
import { processStartTime, type ProcessIdentity, selfIdentity } from "./procfs.js"

/** Unix socket paths must fit in sun_path (108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107

export const EphemeralRecord = Schema.Struct({
  id: Schema.String,
  kind: Schema.Literal("ephemeral"),
  owner: Schema.Struct({ pid: Schema.Int, startTime: Schema.Number }),
  vmmPid: Schema.optional(Schema.Int),
  /** With vmmPid: its start time, so a recycled pid is never taken for the VM's QEMU. */
  vmmStartTime: Schema.optional(Schema.Number),
  createdAt: Schema.String
})
export type EphemeralRecord = typeof EphemeralRecord.Type

export interface VmPaths {
  readonly id: string
  readonly dir: string
  readonly record: string
  readonly channelSocket: string
  readonly qmpSocket: string
  readonly consoleLog: string
  readonly scratch: string
  /**
   * Where the VM's RAM lives as a file of its own, mapped shared (a
   * workspace's, on a tmpfs, so that a fork can copy it); absent: RAM private
   * to QEMU (or a template's file, mapped privately).
   */
  readonly ram?: string
}

/**
 * Host channel N's socket, beside channel 0's (`channelSocket`, what a VM with
 * one channel has always had): `channel-N.sock`.
 */
export const channelSocketPath = (channelSocket: string, channel: number) =>
  channel === 0 ? channelSocket : Path.join(Path.dirname(channelSocket), `channel-${channel}.sock`)

export const vmsRoot = (stateDir: string) => Path.join(stateDir, "vms")

export const vmPaths = (stateDir: string, id: string): VmPaths => {
  const dir = Path.join(vmsRoot(stateDir), id)
  return { id, dir, record: Path.join(dir, "vm.json"), ...vmFilesIn(dir) }
}

/** The names of a VM's files in its directory (a spare's too, src/vm/spares/store.ts). */
export const vmFilesIn = (dir: string) => ({
  channelSocket: Path.join(dir, "channel.sock"),
  qmpSocket: Path.join(dir, "qmp.sock"),
  consoleLog: Path.join(dir, "console.log"),
  scratch: Path.join(dir, "scratch.ext4")
})

const encodeRecord = Schema.encodeSync(Schema.parseJson(EphemeralRecord, { space: 2 }))
export const decodeEphemeralRecord = Schema.decodeUnknownOption(Schema.parseJson(EphemeralRecord))

/**
 * An ephemeral record holds no slot by itself: warm-pool and template VMs, the
 * runtime's own, give way to real work. A one-shot run holds its slot by a boot
 * claim, written with the record and gone with the directory.
 */
export const ephemeralVms = machineKind({
  root: vmsRoot,
  paths: vmPaths,
  decode: decodeEphemeralRecord,
  holdsSlot: (_record, claimed) => claimed()
})

/** Create an ephemeral VM's directory; it and its contents go when the scope closes. */
export const makeEphemeralDir = (
  stateDir: string,
  id: string,
  channels = 1,
  /** A QEMU already running there (a head start's), for the record. */
  vmm?: number
): Effect.Effect<VmPaths, BootError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = vmPaths(stateDir, id)
    const longest = channelSocketPath(paths.channelSocket, channels - 1)
    if (Buffer.byteLength(longest) > MAX_SOCKET_PATH) {
      return yield* new BootError({
        stage: "Prepare",
        detail: `socket path ${longest} is longer than ${MAX_SOCKET_PATH} bytes; set PYRO_STATE_DIR to a shorter directory`
      })
    }
    yield* Effect.acquireRelease(
      fs.makeDirectory(paths.dir, { recursive: true, mode: 0o700 }),
      // Synchronous: a few files, ~1 ms, where the thread pool's round trips cost ~8.
      () => Effect.sync(() => Fs.rmSync(paths.dir, { recursive: true, force: true }))
    ).pipe(Effect.mapError((e) => new BootError({ stage: "Prepare", detail: e.message })))
    yield* writeEphemeralRecord(paths, vmm)
    return paths
  })

/** `vmm`: the VM's QEMU, by pid (its start time read now) or by a known identity (a claimed spare's). */
export const writeEphemeralRecord = (paths: VmPaths, vmm: number | ProcessIdentity | undefined) =>
  writeFileAtomic(
    paths.record,
    encodeRecord({
      id: paths.id,
      kind: "ephemeral",
      owner: selfIdentity(),
      ...(vmm === undefined
        ? {}
        : typeof vmm === "number"
        ? { vmmPid: vmm, vmmStartTime: processStartTime(vmm) ?? 0 }
        : { vmmPid: vmm.pid, vmmStartTime: vmm.startTime }),
      createdAt: new Date().toISOString()
    }),
    0o600,
    // A one-shot VM does not outlive a power loss; its record only has to be whole.
    false
  ).pipe(Effect.mapError((e) => new BootError({ stage: "Prepare", detail: `cannot write ${paths.record}: ${e.message}` })))
