/**
 * What every record of a long-lived machine (persistent VM, workspace) holds:
 * its id, sizing, lifetime and, while it runs, its QEMU. Each kind keeps its
 * record in its own directory (src/vm/record.ts, src/workspace/store.ts).
 */
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import { ExecutionMode } from "../contract/common.js"
import { NetworkPolicy } from "../contract/network.js"
import { type GuestNetwork, networkFields, networkOfRecord } from "../vm/network/policy.js"
import { isAlive } from "../vm/procfs.js"

export const ProcessId = Schema.Struct({ pid: Schema.Int, startTime: Schema.Number })

export const MachineRecordFields = {
  id: Schema.String,
  environment: Schema.String,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int,
  /** Whether the guest has a NIC; network_policy says which (records older than it hold only this). */
  network: Schema.Boolean,
  network_policy: Schema.optional(NetworkPolicy),
  /** The names the guest may reach through the host's proxy; null or absent: no allowlist. */
  allow_hosts: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  allow_host_compat: Schema.Boolean,
  execution_mode: ExecutionMode,
  ttl_seconds: Schema.Int,
  created_at: Schema.String,
  expires_at: Schema.String,
  boot_ms: Schema.NullOr(Schema.Int),
  /** QEMU while running: pid and start time (tells it from a recycled pid). */
  vmm: Schema.NullOr(ProcessId)
}
export type MachineRecord = Schema.Struct.Type<typeof MachineRecordFields>

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
    readonly allow_host_compat: boolean
    readonly ttl_seconds: number
  },
  network: GuestNetwork,
  now: number
): MachineRecord => ({
  id,
  environment,
  vcpu_count: input.vcpu_count,
  mem_mib: input.mem_mib,
  ...networkFields(network),
  allow_host_compat: input.allow_host_compat,
  execution_mode: "guest_virtio_serial",
  ttl_seconds: input.ttl_seconds,
  created_at: iso(now),
  expires_at: iso(now + input.ttl_seconds * 1000),
  boot_ms: null,
  vmm: null
})

/** How a result reports a guest's network. */
export const resultNetworkFields = (network: GuestNetwork) => {
  const { network: enabled, ...rest } = networkFields(network)
  return { network_enabled: enabled, ...rest }
}

/** The result fields a VM's info and a workspace's summary share. */
export const machineResultFields = (record: MachineRecord) => ({
  environment: record.environment,
  vcpu_count: record.vcpu_count,
  mem_mib: record.mem_mib,
  ...resultNetworkFields(networkOfRecord(record)),
  execution_mode: record.execution_mode,
  ttl_seconds: record.ttl_seconds,
  created_at: record.created_at,
  expires_at: record.expires_at
})

export const isExpired = (record: { readonly expires_at: string }, now: number) => Date.parse(record.expires_at) <= now

/** Whether a record's QEMU is still the process it started. */
export const vmmAlive = (record: Pick<MachineRecord, "vmm">) => record.vmm !== null && isAlive(record.vmm)
