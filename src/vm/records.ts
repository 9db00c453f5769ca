/**
 * Persistent VMs (vm_create ... vm_delete) on disk: `<stateDir>/vms/<id>/vm.json`,
 * written atomically, so every pyro process (a CLI, an MCP server, an SDK
 * user) sees the same VMs. Changes that must not race across processes (the
 * active-VM limit, state transitions) run under the state lock (src/host/lock.ts).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { ExecutionMode } from "../contract/common.js"
import { VmState } from "../contract/vm.js"
import { recordDir } from "../host/recordDir.js"
import { withLock } from "../host/lock.js"
import { isAlive, selfIdentity } from "./procfs.js"
import { vmPaths, vmsRoot } from "./vmDir.js"

export const ProcessId = Schema.Struct({ pid: Schema.Int, startTime: Schema.Number })

/** What every record of a long-lived machine (persistent VM, workspace) holds. */
export const MachineRecordFields = {
  id: Schema.String,
  environment: Schema.String,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int,
  network: Schema.Boolean,
  allow_host_compat: Schema.Boolean,
  execution_mode: ExecutionMode,
  ttl_seconds: Schema.Int,
  created_at: Schema.String,
  expires_at: Schema.String,
  boot_ms: Schema.NullOr(Schema.Int),
  /** QEMU while running: pid and start time (tells it from a recycled pid). */
  vmm: Schema.NullOr(ProcessId)
}
type MachineRecord = Schema.Struct.Type<typeof MachineRecordFields>

/** Ids of VMs and workspaces: 12 random lowercase hex digits. */
export const newMachineId = () => randomBytes(6).toString("hex")

export const iso = (ms: number) => new Date(ms).toISOString()

/** What a new machine's record starts with: its sizing and lifetime, no VMM yet. */
export const newMachineFields = (
  id: string,
  environment: string,
  input: {
    readonly vcpu_count: number
    readonly mem_mib: number
    readonly network: boolean
    readonly allow_host_compat: boolean
    readonly ttl_seconds: number
  },
  now: number
): MachineRecord => ({
  id,
  environment,
  vcpu_count: input.vcpu_count,
  mem_mib: input.mem_mib,
  network: input.network,
  allow_host_compat: input.allow_host_compat,
  execution_mode: "guest_virtio_serial",
  ttl_seconds: input.ttl_seconds,
  created_at: iso(now),
  expires_at: iso(now + input.ttl_seconds * 1000),
  boot_ms: null,
  vmm: null
})

/** The result fields a VM's info and a workspace's summary share. */
export const machineResultFields = (record: MachineRecord) => ({
  environment: record.environment,
  vcpu_count: record.vcpu_count,
  mem_mib: record.mem_mib,
  network_enabled: record.network,
  execution_mode: record.execution_mode,
  ttl_seconds: record.ttl_seconds,
  created_at: record.created_at,
  expires_at: record.expires_at
})

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

/** Whether a record's QEMU is still the process it started. */
export const vmmAlive = (record: PersistentRecord) => record.vmm !== null && isAlive(record.vmm)

/** A "started" VM whose QEMU is gone (crashed, host rebooted) is reported as stopped; one on the host has none. */
export const observedState = (record: PersistentRecord): PersistentRecord["state"] =>
  record.state === "started" && record.execution_mode !== "host_compat" && !vmmAlive(record) ? "stopped" : record.state

export const isExpired = (record: { readonly expires_at: string }, now: number) => Date.parse(record.expires_at) <= now

/** Run `body` holding the state lock (`vms.lock`): held for bookkeeping, never across a boot. */
export const withStateLock = <A, E, R>(stateDir: string, body: Effect.Effect<A, E, R>) =>
  withLock(stateDir, "vms.lock", body)

const BOOT_CLAIM = "boot-claim.json"
const decodeClaim = Schema.decodeUnknownOption(Schema.parseJson(ProcessId))

/**
 * While a process boots a long-lived machine (a workspace, a stopped VM started
 * again), a claim in its directory names that process, so the active-VM count
 * includes the boot: written under the state lock right after checking the limit,
 * removed once the record names the running VMM (or the boot failed).
 */
export const writeBootClaim = (dir: string) =>
  Effect.sync(() => Fs.writeFileSync(Path.join(dir, BOOT_CLAIM), JSON.stringify(selfIdentity()), { mode: 0o600 }))

export const removeBootClaim = (dir: string) => Effect.sync(() => Fs.rmSync(Path.join(dir, BOOT_CLAIM), { force: true }))

/** A claim whose process is gone (killed mid-boot) holds nothing. */
export const bootClaimHeld = (dir: string): boolean => {
  try {
    return Option.match(decodeClaim(Fs.readFileSync(Path.join(dir, BOOT_CLAIM), "utf8")), {
      onNone: () => false,
      onSome: isAlive
    })
  } catch {
    return false
  }
}
