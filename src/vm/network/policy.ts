/**
 * What network a new VM gets: the policy and allowlist its caller asked for
 * (src/contract/network.ts), held to the operator's cap, and what every
 * command in a VM with an allowlist needs in its environment to reach the
 * host's proxy (allowProxy.ts).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { InvalidInput } from "../../contract/errors.js"
import { type NetworkPolicy, requestedNetwork } from "../../contract/network.js"
import { Caller } from "../../services/Caller.js"
import { DEFAULT_GUEST_ENV } from "../execCommand.js"
import { patternCovered } from "./allowHosts.js"

export interface GuestNetwork {
  readonly policy: NetworkPolicy
  /** Only these names, through the host's proxy; null: every public address, directly. */
  readonly allowHosts: ReadonlyArray<string> | null
}

export const NO_NETWORK: GuestNetwork = { policy: "off", allowHosts: null }

/** Where the guest finds the proxy: libslirp's guestfwd address (src/vm/qemu/args.ts). */
export const PROXY_GUEST_ADDRESS = "10.0.2.100"
export const PROXY_GUEST_PORT = 3128
export const PROXY_URL = `http://${PROXY_GUEST_ADDRESS}:${PROXY_GUEST_PORT}`

export const hasNetwork = (network: GuestNetwork) => network.policy !== "off"

/** Whether the guest's traffic goes through the allowlist proxy. */
export const proxied = (network: GuestNetwork) => hasNetwork(network) && network.allowHosts !== null

/**
 * Variables every command (exec, shell, service) in the guest gets on top of
 * its own: the proxy, for proxy-aware programs, in both spellings programs
 * read; loopback stays direct.
 */
export const guestNetworkEnv = (network: GuestNetwork): ReadonlyArray<readonly [string, string]> =>
  proxied(network)
    ? [
      ["http_proxy", PROXY_URL],
      ["https_proxy", PROXY_URL],
      ["HTTP_PROXY", PROXY_URL],
      ["HTTPS_PROXY", PROXY_URL],
      ["no_proxy", "localhost,127.0.0.1,::1"],
      ["NO_PROXY", "localhost,127.0.0.1,::1"]
    ]
    : []

/** A command's whole environment in a guest with this network (exec; shells and services add their own). */
export const guestCommandEnv = (network: GuestNetwork): ReadonlyArray<readonly [string, string]> => [
  ...DEFAULT_GUEST_ENV,
  ...guestNetworkEnv(network)
]

/** A record's network; records written before network_policy existed hold only the boolean. */
export const networkOfRecord = (record: {
  readonly network: boolean
  readonly network_policy?: NetworkPolicy | undefined
  readonly allow_hosts?: ReadonlyArray<string> | null | undefined
}): GuestNetwork => ({
  policy: record.network_policy ?? (record.network ? "egress" : "off"),
  allowHosts: record.allow_hosts ?? null
})

/** The fields a record keeps and a result echoes. */
export const networkFields = (network: GuestNetwork) => ({
  network: hasNetwork(network),
  network_policy: network.policy,
  allow_hosts: network.allowHosts
})

export const OPERATOR_CAP_SOURCE = "PYRO_ALLOW_HOSTS or new Pyro({ allowHosts })"

/**
 * The network a new VM gets (vm_run, vm_create, workspace_create), or
 * InvalidInput saying which field is wrong. A tool caller's egress is held to
 * the operator's allowlist when there is one: none asked for gets the
 * operator's, and an entry the operator's does not cover is refused.
 */
export const grantNetwork = (
  input: Parameters<typeof requestedNetwork>[0],
  cap: Option.Option<ReadonlyArray<string>>
): Effect.Effect<GuestNetwork, InvalidInput> =>
  Effect.gen(function*() {
    const requested = requestedNetwork(input)
    if ("problem" in requested) return yield* new InvalidInput({ detail: requested.problem })
    if (!hasNetwork(requested)) return NO_NETWORK
    const caller = yield* Caller
    if (caller.kind === "operator" || Option.isNone(cap)) return requested
    if (requested.allowHosts === null) return { policy: requested.policy, allowHosts: [...cap.value] }
    const outside = requested.allowHosts.filter((entry) => !patternCovered(entry, cap.value))
    if (outside.length > 0) {
      return yield* new InvalidInput({
        detail: `allow_hosts: ${outside.map((e) => JSON.stringify(e)).join(", ")} ${outside.length > 1 ? "are" : "is"} ` +
          `not within the operator's allowlist (${cap.value.join(", ") || "empty"}; ${OPERATOR_CAP_SOURCE})`
      })
    }
    return requested
  })
