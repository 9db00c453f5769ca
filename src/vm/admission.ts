/**
 * What every machine-making operation checks before anything starts: a size
 * this host can give, and, for a request to fall back to the host, that the
 * operator allowed it (docs/security.md). Fails with InvalidInput naming the
 * field, so a caller can correct it and try again.
 */
import * as Effect from "effect/Effect"
import * as Os from "node:os"
import { InvalidInput } from "../contract/errors.js"
import { Caller } from "../services/Caller.js"

export interface HostCapacity {
  readonly memMib: number
  readonly cpus: number
}

export const hostCapacity = (): HostCapacity => ({
  memMib: Math.floor(Os.totalmem() / (1024 * 1024)),
  cpus: Os.availableParallelism()
})

const gib = (mib: number) => `${(mib / 1024).toFixed(1)} GiB`

/** The problems with a requested size on this host, one `field: problem` each. */
export const sizingProblems = (
  input: { readonly vcpu_count: number; readonly mem_mib: number },
  host: HostCapacity = hostCapacity()
): Array<string> => [
  ...(input.mem_mib > host.memMib
    ? [`mem_mib: ${input.mem_mib} MiB is more memory than this host has (${host.memMib} MiB, ${gib(host.memMib)})`]
    : []),
  ...(input.vcpu_count > host.cpus
    ? [`vcpu_count: ${input.vcpu_count} is more vCPUs than this host has cores (${host.cpus})`]
    : [])
]

export const HOST_COMPAT_NOT_GRANTED =
  "allow_host_compat: running commands on the host needs the operator's permission " +
  "(pyro mcp serve --allow-host-compat, or new Pyro({ allowHostCompat: true })); leave it out to run in a VM"

/** Size and host-fallback checks for vm_run, vm_create and workspace_create. */
export const admit = (input: {
  readonly vcpu_count: number
  readonly mem_mib: number
  readonly allow_host_compat: boolean
}): Effect.Effect<void, InvalidInput> =>
  Effect.gen(function*() {
    const caller = yield* Caller
    const problems = sizingProblems(input)
    if (input.allow_host_compat && caller.kind === "tool" && !caller.hostCompat) problems.push(HOST_COMPAT_NOT_GRANTED)
    if (problems.length > 0) return yield* new InvalidInput({ detail: problems.join("; ") })
  })
