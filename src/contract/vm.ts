/** vm_* operations: inputs and results. */
import * as Schema from "effect/Schema"
import {
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

const withDefault = <A, I, R>(schema: Schema.Schema<A, I, R>, value: A) =>
  Schema.optionalWith(schema, { default: () => value })

export const VmRunInput = Schema.Struct({
  environment: EnvironmentName,
  command: Command,
  vcpu_count: withDefault(VcpuCount, DEFAULT_VCPU_COUNT),
  mem_mib: withDefault(MemMib, DEFAULT_MEM_MIB),
  timeout_seconds: withDefault(TimeoutSeconds, DEFAULT_TIMEOUT_SECONDS),
  ttl_seconds: withDefault(TtlSeconds, DEFAULT_TTL_SECONDS),
  network: withDefault(Schema.Boolean, false),
  allow_host_compat: withDefault(Schema.Boolean, false)
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
  boot_ms: Schema.Int
})
export type VmRunResult = typeof VmRunResult.Type
