/** Fields shared by several operations, with the original's names and defaults. */
import * as Schema from "effect/Schema"

export const DEFAULT_VCPU_COUNT = 1
export const DEFAULT_MEM_MIB = 1024
export const DEFAULT_TIMEOUT_SECONDS = 30
export const DEFAULT_TTL_SECONDS = 600

/**
 * How commands reach the guest: the agent's channel over a virtio-serial port
 * (QEMU). The original's Firecracker build says `guest_vsock`; a run on the
 * host itself (allow_host_compat) says `host_compat`.
 */
export const ExecutionMode = Schema.Literal("guest_virtio_serial", "guest_vsock", "host_compat")
export type ExecutionMode = typeof ExecutionMode.Type

export const EnvironmentName = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(200),
  Schema.annotations({ description: "Environment name, e.g. debian:12 (see vm_list_environments)." })
)

export const VcpuCount = Schema.Int.pipe(
  Schema.between(1, 64),
  Schema.annotations({ description: "Virtual CPUs." })
)
export const MemMib = Schema.Int.pipe(
  Schema.between(128, 65536),
  Schema.annotations({ description: "Guest memory in MiB." })
)
export const TimeoutSeconds = Schema.Int.pipe(
  Schema.between(1, 86400),
  Schema.annotations({ description: "Seconds before the command is killed (exit code 124)." })
)
export const TtlSeconds = Schema.Int.pipe(
  Schema.between(1, 7 * 86400),
  Schema.annotations({ description: "Seconds before an idle VM or workspace is reaped." })
)

export const Command = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.NonEmptyArray(Schema.String)
).pipe(Schema.annotations({
  description: "A shell command line (run with /bin/sh -c) or an argv array (run directly, no shell)."
}))
export type Command = typeof Command.Type
