/**
 * Stopping and killing a detached VM (a persistent VM's, a workspace's): one
 * that outlives the call that booted it, known only by its handle, what its
 * record says (its QEMU) and its directory (its socket, and the QEMU a boot cut
 * short may have left there without a record naming it).
 */
import * as Effect from "effect/Effect"
import type { Vmm } from "../services/Vmm.js"
import { isAlive, type ProcessIdentity } from "../vm/procfs.js"
import { awaitGone, killVmm } from "../vm/qemu/process.js"
import { qemusUsing } from "../vm/vmmIdentity.js"

/** A stopping guest gets this long to sync and power off before QEMU is killed. */
const POWEROFF_GRACE_MS = 5_000

export interface DetachedHandle {
  /** The QEMU the record names, if any. */
  readonly vmm: ProcessIdentity | null | undefined
  readonly dir: string
  readonly channelSocket: string
}

export const makeDetachedVms = (vmm: Pick<Vmm["Type"], "vmmExecutable" | "connect">) => {
  /**
   * Kill the VM the record names, then any QEMU still running on its directory (one
   * whose boot was cut short before the record learnt of it); true if the recorded one ran.
   */
  const kill = (handle: Pick<DetachedHandle, "vmm" | "dir">) =>
    Effect.gen(function*() {
      const wasRunning = yield* killVmm(handle.vmm)
      yield* Effect.forEach(qemusUsing(handle.dir, vmm.vmmExecutable), killVmm)
      return wasRunning
    })

  /** A clean poweroff lets the guest flush its scratch disk, then QEMU exits by itself; else it is killed. True if it ran. */
  const stop = (handle: DetachedHandle) =>
    Effect.gen(function*() {
      const running = handle.vmm
      if (!running || !isAlive(running)) return false
      yield* Effect.scoped(Effect.gen(function*() {
        const connection = yield* vmm.connect(handle.channelSocket, POWEROFF_GRACE_MS)
        yield* connection.poweroff
      })).pipe(Effect.timeout(POWEROFF_GRACE_MS), Effect.ignore)
      if (!(yield* awaitGone(running, POWEROFF_GRACE_MS))) yield* killVmm(running)
      return true
    })

  return { kill, stop }
}
