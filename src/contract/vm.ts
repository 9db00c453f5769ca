/** vm_* operations: inputs and results. */
import * as Schema from "effect/Schema"
import {
  AllowHostCompat,
  Command,
  DEFAULT_MEM_MIB,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_TTL_SECONDS,
  DEFAULT_VCPU_COUNT,
  EnvironmentName,
  ExecutionMode,
  MemMib,
  TimeoutSeconds,
  TtlSeconds,
  VcpuCount
} from "./common.js"
import { NetworkInputFields, NetworkPolicy, NetworkResultFields } from "./network.js"

/** Optional on input, `value` when left out; the default shows in the tools' JSON Schema. */
export const withDefault = <A, I, R>(schema: Schema.Schema<A, I, R>, value: A) =>
  Schema.optionalWith(schema.annotations({ default: value }), { default: () => value })

export const VmRunInput = Schema.Struct({
  environment: EnvironmentName,
  command: Command,
  vcpu_count: withDefault(VcpuCount, DEFAULT_VCPU_COUNT),
  mem_mib: withDefault(MemMib, DEFAULT_MEM_MIB),
  timeout_seconds: withDefault(TimeoutSeconds, DEFAULT_TIMEOUT_SECONDS),
  ttl_seconds: withDefault(TtlSeconds, DEFAULT_TTL_SECONDS),
  ...NetworkInputFields,
  allow_host_compat: withDefault(AllowHostCompat, false)
})
export type VmRunInput = typeof VmRunInput.Type

/** Result of one command; shared by vm_run and vm_exec. */
export const ExecResult = Schema.Struct({
  stdout: Schema.String,
  stderr: Schema.String,
  exit_code: Schema.Int,
  duration_ms: Schema.Int,
  execution_mode: ExecutionMode,
  timed_out: Schema.Boolean,
  /** True when stdout held more than the in-memory cap; `stdout_bytes` counts all of it. */
  stdout_truncated: Schema.Boolean,
  stderr_truncated: Schema.Boolean,
  stdout_bytes: Schema.Int,
  stderr_bytes: Schema.Int
})

export const VmRunResult = Schema.Struct({
  ...ExecResult.fields,
  vm_id: Schema.String,
  environment: Schema.String,
  boot_ms: Schema.Int,
  network_policy: NetworkPolicy,
  allow_hosts: NetworkResultFields.allow_hosts
})
export type VmRunResult = typeof VmRunResult.Type

export const VmId = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{12}$/, { message: () => "must be a vm_id as returned by vm_create (12 hex digits)" }),
  Schema.annotations({ description: "The VM's id, as returned by vm_create." })
)

export const VmCreateInput = Schema.Struct({
  environment: EnvironmentName,
  vcpu_count: withDefault(VcpuCount, DEFAULT_VCPU_COUNT),
  mem_mib: withDefault(MemMib, DEFAULT_MEM_MIB),
  ttl_seconds: withDefault(TtlSeconds, DEFAULT_TTL_SECONDS),
  ...NetworkInputFields,
  allow_host_compat: withDefault(AllowHostCompat, false)
})
export type VmCreateInput = typeof VmCreateInput.Type

export const VmIdInput = Schema.Struct({ vm_id: VmId })
export type VmIdInput = typeof VmIdInput.Type

export const VmExecInput = Schema.Struct({
  vm_id: VmId,
  command: Command,
  timeout_seconds: withDefault(TimeoutSeconds, DEFAULT_TIMEOUT_SECONDS)
})
export type VmExecInput = typeof VmExecInput.Type

export const VmState = Schema.Literal("created", "started", "stopped")
export type VmState = typeof VmState.Type

/** What vm_create, vm_start, vm_stop and vm_status return: the VM as it is now. */
export const VmInfo = Schema.Struct({
  vm_id: Schema.String,
  environment: Schema.String,
  state: VmState,
  vcpu_count: Schema.Int,
  mem_mib: Schema.Int,
  ...NetworkResultFields,
  allow_host_compat: Schema.Boolean,
  execution_mode: ExecutionMode,
  ttl_seconds: Schema.Int,
  /** ISO 8601, UTC. */
  created_at: Schema.String,
  expires_at: Schema.String,
  started_at: Schema.NullOr(Schema.String),
  boot_ms: Schema.NullOr(Schema.Int)
})
export type VmInfo = typeof VmInfo.Type

export const VmExecResult = Schema.Struct({
  ...ExecResult.fields,
  vm_id: Schema.String,
  environment: Schema.String,
  /** Always true: vm_exec deletes the VM after its one command. */
  deleted: Schema.Boolean
})
export type VmExecResult = typeof VmExecResult.Type

export const VmDeleteResult = Schema.Struct({
  vm_id: Schema.String,
  state: Schema.Literal("deleted"),
  /** The VM was running and has been stopped. */
  was_running: Schema.Boolean
})
export type VmDeleteResult = typeof VmDeleteResult.Type

/** One connection the allowlist proxy refused (src/vm/network/allowProxy.ts). */
export const RefusedConnection = Schema.Struct({
  /** ISO 8601, UTC. */
  at: Schema.String,
  /** The name (or address) the guest asked for. */
  host: Schema.String,
  reason: Schema.String
})

/** QEMU user-mode networking as the guest sees it (public egress only: src/vm/network/egress.ts). */
export const VmNetworkInfo = Schema.Struct({
  vm_id: Schema.String,
  ...NetworkResultFields,
  mode: Schema.Literal("qemu-user", "none"),
  interface: Schema.NullOr(Schema.String),
  guest_ip: Schema.NullOr(Schema.String),
  prefix_length: Schema.NullOr(Schema.Int),
  gateway: Schema.NullOr(Schema.String),
  dns: Schema.Array(Schema.String),
  /** The original's address of the host's loopback as the guest reaches it: always null, the guest cannot. */
  host_alias: Schema.NullOr(Schema.String),
  /** With allow_hosts: the HTTP proxy the guest's commands are given (http_proxy, https_proxy); else null. */
  proxy: Schema.NullOr(Schema.String),
  /** With allow_hosts: connections the proxy refused since the VM was created. */
  refused_count: Schema.Int,
  /** The last few of them, newest last. */
  refused_recent: Schema.Array(RefusedConnection)
})
export type VmNetworkInfo = typeof VmNetworkInfo.Type

export const ReapResult = Schema.Struct({
  reaped: Schema.Array(Schema.Struct({
    kind: Schema.Literal("vm", "workspace"),
    id: Schema.String,
    environment: Schema.String,
    expired_at: Schema.String
  })),
  count: Schema.Int
})
export type ReapResult = typeof ReapResult.Type
