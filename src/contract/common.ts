/** Fields shared by several operations, with the original's names and defaults. */
import * as ParseResult from "effect/ParseResult"
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

export const intBetween = (min: number, max: number) =>
  Schema.Int.pipe(Schema.between(min, max, { message: () => `must be a whole number from ${min} to ${max}` }))

export const VcpuCount = intBetween(1, 64).pipe(
  Schema.annotations({ description: "Virtual CPUs." })
)
export const MemMib = intBetween(128, 65536).pipe(
  Schema.annotations({ description: "Guest memory in MiB." })
)
export const TimeoutSeconds = intBetween(1, 86400).pipe(
  Schema.annotations({ description: "Seconds before the command is killed (exit code 124)." })
)
export const TtlSeconds = intBetween(1, 7 * 86400).pipe(
  Schema.annotations({ description: "Seconds from creation until the VM or workspace is deleted by the reaper, whatever its state." })
)

export const Command = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.NonEmptyArray(Schema.String)
).pipe(Schema.annotations({
  description: "A shell command line (run with /bin/sh -c) or an argv array (run directly, no shell)."
}))
export type Command = typeof Command.Type

/** "field: problem" lines for a failed decode, the way every entrypoint reports bad input. */
export const formatInputError = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  // An optional field's "or undefined" alternative adds nothing to the real complaint.
  const useful = issues.filter((i) => !i.message.startsWith("Expected undefined"))
  return (useful.length > 0 ? useful : issues)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ")
}

export const AllowHostCompat = Schema.Boolean.annotations({
  description: "If this host cannot run VMs at all (no QEMU, no usable kernel), run the command on the host itself " +
    "instead (no isolation; execution_mode says host_compat). Refused unless the operator started pyro with " +
    "--allow-host-compat; a failed boot is never retried on the host."
})
