/**
 * What every machine-making operation checks before anything starts: a size
 * this host can give, and, for a request to fall back to the host, that the
 * operator allowed it (docs/security.md). Fails with InvalidInput naming the
 * field, so a caller can correct it and try again.
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Os from "node:os"
import { InvalidInput } from "../contract/errors.js"
import type { requestedNetwork } from "../contract/network.js"
import { Caller } from "../services/Caller.js"
import { type GuestNetwork, grantNetwork } from "./network/policy.js"

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

/** Whether the caller in progress may run commands on the host (the operator may; a tool caller if granted). */
export const hostCompatGranted = Effect.map(Caller, (caller) => caller.kind === "operator" || caller.hostCompat)

/**
 * For a VM whose record already says it falls back to the host (vm_start,
 * vm_exec): the record may have been made by a caller that had the grant;
 * the caller now asking must have it too.
 */
export const requireHostCompatGrant = (vmId: string): Effect.Effect<void, InvalidInput> =>
  Effect.flatMap(hostCompatGranted, (granted) =>
    granted
      ? Effect.void
      : Effect.fail(
        new InvalidInput({
          detail: `vm_id: ${vmId} runs its commands on the host (allow_host_compat), which needs the operator's permission ` +
            "(pyro mcp serve --allow-host-compat, or new Pyro({ allowHostCompat: true }))"
        })
      ))

/**
 * Size, host-fallback and network checks for vm_run, vm_create and
 * workspace_create; the network the VM gets (`allowHostsCap`: the operator's
 * allowlist for tool callers, PyroConfig.allowHosts).
 */
export const admit = (
  input: {
    readonly vcpu_count: number
    readonly mem_mib: number
    readonly allow_host_compat: boolean
  } & Parameters<typeof requestedNetwork>[0],
  allowHostsCap: Option.Option<ReadonlyArray<string>>
): Effect.Effect<GuestNetwork, InvalidInput> =>
  Effect.gen(function*() {
    const problems = sizingProblems(input)
    if (input.allow_host_compat && !(yield* hostCompatGranted)) problems.push(HOST_COMPAT_NOT_GRANTED)
    if (problems.length > 0) return yield* new InvalidInput({ detail: problems.join("; ") })
    return yield* grantNetwork(input, allowHostsCap)
  })
