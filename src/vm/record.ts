/**
 * Persistent VMs (vm_create ... vm_delete) on disk: `<stateDir>/vms/<id>/vm.json`,
 * written atomically, so every pyro process (a CLI, an MCP server, an SDK
 * user) sees the same VMs. Changes that must not race across processes (the
 * active-VM limit, state transitions) run under the state lock (src/machine/lock.ts).
 */
import * as Schema from "effect/Schema"
import { VmState } from "../contract/vm.js"
import { recordDir } from "../host/recordDir.js"
import { machineKind } from "../machine/limit.js"
import type { MachineLock } from "../machine/lock.js"
import { isExpired, MachineRecordFields, ProcessId, vmmAlive } from "../machine/record.js"
import { vmPaths, vmsRoot } from "./vmDir.js"

export const PersistentRecord = Schema.Struct({
  ...MachineRecordFields,
  kind: Schema.Literal("persistent"),
  state: VmState,
  started_at: Schema.NullOr(Schema.String),
  /**
   * The process that created the VM. A VM lives no longer than it (QEMU has a
   * parent-death signal, and the start-up sweep removes records whose creator
   * is gone), so no VM outlives the program that asked for it.
   */
  owner: ProcessId,
  /** The scratch disk holds the VM's files from its first start on; later starts keep it. */
  scratch_formatted: Schema.Boolean
})
export type PersistentRecord = typeof PersistentRecord.Type

const records = recordDir(PersistentRecord, vmsRoot, (stateDir, id) => vmPaths(stateDir, id).record)

export const decodePersistentRecord = records.decode
export const readRecord = records.read
export const writeRecord = records.write
export const listRecords = records.list

/** A "started" VM whose QEMU is gone (crashed, host rebooted) is reported as stopped; one on the host has none. */
export const observedState = (record: PersistentRecord): PersistentRecord["state"] =>
  record.state === "started" && record.execution_mode !== "host_compat" && !vmmAlive(record) ? "stopped" : record.state

/** A persistent VM holds a slot from its creation until it expires, except while stopped and not being started. */
export const persistentVms = machineKind({
  root: vmsRoot,
  paths: vmPaths,
  decode: decodePersistentRecord,
  holdsSlot: (record, claimed, now) => !isExpired(record, now) && (record.state === "created" || vmmAlive(record) || claimed())
})

/** One start per VM at a time, across processes: two would boot two QEMUs on one disk. */
export const vmStartLock = (id: string): MachineLock => ({ root: "vms", id, guards: "start" })
