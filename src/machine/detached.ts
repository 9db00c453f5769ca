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

  /**
   * A clean poweroff lets the guest flush its scratch disk, then QEMU exits by
   * itself; else it is killed. True if it ran. `powerOff` asks the guest, within
   * the grace (a workspace asks over the channel its process leases).
   */
  const stopWith = (running: ProcessIdentity | null | undefined, powerOff: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      if (!running || !isAlive(running)) return false
      yield* powerOff.pipe(Effect.timeout(POWEROFF_GRACE_MS), Effect.ignore)
      if (!(yield* awaitGone(running, POWEROFF_GRACE_MS))) yield* killVmm(running)
      return true
    })

  /** Stop, asking over a connection of its own on the VM's first channel. */
  const stop = (handle: DetachedHandle) =>
    stopWith(
      handle.vmm,
      Effect.scoped(Effect.flatMap(vmm.connect(handle.channelSocket, POWEROFF_GRACE_MS), (connection) => connection.poweroff))
    )

  return { kill, stop, stopWith }
}
