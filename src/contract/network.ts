/** A guest's network, as the vm_* and workspace_create operations take it and report it. */
import * as Schema from "effect/Schema"
import { hostPatternProblem } from "./hostPattern.js"

export const NETWORK_POLICIES = ["off", "egress", "egress+published-ports"] as const
export const DEFAULT_NETWORK_POLICY = "off"
export const MAX_ALLOW_HOSTS = 64

export const NetworkPolicy = Schema.Literal(...NETWORK_POLICIES).annotations({
  description: "The guest's network (default off: loopback only). egress: outbound access to public addresses " +
    "(the host itself, private and link-local networks stay unreachable). egress+published-ports: egress, and " +
    "services may publish ports on the host's 127.0.0.1 (service_start's published_ports). `network: true` means egress."
})
export type NetworkPolicy = typeof NetworkPolicy.Type

export const Network = Schema.Boolean.annotations({
  description: "The older form of network_policy: true means egress, false means off (the default)."
})

export const AllowHost = Schema.String.pipe(
  Schema.filter((entry) => {
    const problem = hostPatternProblem(entry)
    return problem === undefined || `${JSON.stringify(entry.slice(0, 300))} ${problem}`
  })
)

export const AllowHosts = Schema.Array(AllowHost).pipe(
  Schema.maxItems(MAX_ALLOW_HOSTS, { message: () => `at most ${MAX_ALLOW_HOSTS} entries` }),
  Schema.annotations({
    description: "Only with an egress policy: the names the guest may reach, and nothing else. Each a lowercase DNS " +
      "name (github.com) or a wildcard (*.npmjs.org: every name below npmjs.org, not npmjs.org itself); no IP " +
      "addresses or ports. The guest reaches them through an HTTP proxy the host runs (http_proxy and https_proxy " +
      "are set for every command); everything else, direct connections included, is refused."
  })
)

/** The network fields of vm_run, vm_create and workspace_create. */
export const NetworkInputFields = {
  network: Schema.optional(Network),
  network_policy: Schema.optional(NetworkPolicy),
  allow_hosts: Schema.optional(AllowHosts)
}

/** What results echo: the policy, and the allowlist (null: none, every public address). */
export const NetworkResultFields = {
  network_enabled: Schema.Boolean,
  network_policy: NetworkPolicy,
  allow_hosts: Schema.NullOr(Schema.Array(Schema.String))
}

/** The guest's network as asked for: the policy and the allowlist, or why the fields disagree. */
export const requestedNetwork = (input: {
  readonly network?: boolean | undefined
  readonly network_policy?: NetworkPolicy | undefined
  readonly allow_hosts?: ReadonlyArray<string> | undefined
}): { readonly policy: NetworkPolicy; readonly allowHosts: ReadonlyArray<string> | null } | { readonly problem: string } => {
  const { network, network_policy: policy, allow_hosts: allowHosts } = input
  if (network !== undefined && policy !== undefined && network !== (policy !== "off")) {
    return {
      problem: `network: ${network} disagrees with network_policy: ${JSON.stringify(policy)} ` +
        "(network is the older form of network_policy; give one of them)"
    }
  }
  const resolved = policy ?? (network ? "egress" : DEFAULT_NETWORK_POLICY)
  if (allowHosts !== undefined && resolved === "off") {
    return { problem: "allow_hosts: needs network_policy \"egress\" (the guest has no network otherwise)" }
  }
  return { policy: resolved, allowHosts: allowHosts === undefined ? null : [...new Set(allowHosts)] }
}
