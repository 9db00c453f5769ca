/**
 * Where a registry client may connect, for the caller in progress.
 *
 * The operator (the CLI) may name any registry. A tool caller (MCP, SDK) may
 * name one on a loopback, private or link-local address only if the operator
 * listed it (`PYRO_PRIVATE_REGISTRIES`, `PYRO_INSECURE_REGISTRIES`, or
 * `PYRO_REGISTRY`'s registry); otherwise every connection the client makes
 * for it (the registry, its redirects, its token realm) must reach a public
 * address (src/host/addresses.ts). Host names are checked as they are
 * resolved for the connection itself, so a name that resolves to a public
 * address once and a private one later is caught too.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Dns from "node:dns"
import type { LookupAddress, LookupAllOptions } from "node:dns"
import * as Net from "node:net"
import { isPublicAddress } from "../host/addresses.js"
import { registrySecureContext } from "../host/extraCaCerts.js"
import { Caller } from "../services/Caller.js"
import { type ImageReference, parseReference } from "./reference.js"

export interface RegistryAccess {
  /** Why `url` may not be fetched for this caller, if it may not (an address literal that is not public). */
  readonly refuseUrl: (url: URL) => string | undefined
  readonly fetch: typeof fetch
}

const refusal = (host: string, address: string) =>
  `refused: ${host} is ${address === host ? "" : `${address}, `}a loopback, private or link-local address; ` +
  "an MCP or SDK caller may name only registries on public addresses unless the operator lists this one in PYRO_PRIVATE_REGISTRIES"

/** undici's fetch over an agent of its own: to hook DNS lookups, or to trust the operator's extra CAs. */
const fetchWith = (connect: { readonly lookup?: typeof publicLookup }): Promise<typeof fetch> =>
  import("undici").then(({ Agent, fetch: undiciFetch }) => {
    const secureContext = registrySecureContext()
    const dispatcher = new Agent({ connect: { ...connect, ...(secureContext ? { secureContext } : {}) } as never })
    return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch
  })

let trustingFetch: Promise<typeof fetch> | undefined

const unrestricted: RegistryAccess = {
  refuseUrl: () => undefined,
  fetch: (async (input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    registrySecureContext() === undefined
      ? globalThis.fetch(input, init)
      : (await (trustingFetch ??= fetchWith({})))(input, init)) as typeof fetch
}

const list = (name: string) =>
  Config.string(name).pipe(
    Config.withDefault(""),
    Effect.orElseSucceed(() => ""),
    Effect.map((value) => value.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s !== ""))
  )

/** The registries the operator listed: host[:port] as references spell them. */
const operatorListed = Effect.gen(function*() {
  const listed = [...yield* list("PYRO_PRIVATE_REGISTRIES"), ...yield* list("PYRO_INSECURE_REGISTRIES")]
  const home = yield* Config.string("PYRO_REGISTRY").pipe(Config.option, Effect.orElseSucceed(() => undefined))
  if (home && home._tag === "Some") {
    const ref = parseReference(`${home.value.replace(/\/+$/, "")}/x`, { allowBare: true })
    if (Either.isRight(ref)) listed.push(ref.right.registry)
  }
  return listed
})

/** A DNS lookup that fails for any name with a non-public address among its answers. */
const publicLookup = (
  hostname: string,
  options: Dns.LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | Array<LookupAddress>, family?: number) => void
) => {
  Dns.lookup(hostname, { ...options, all: true } as LookupAllOptions, (err, addresses) => {
    if (err) return callback(err, "")
    const bad = addresses.find((a) => !isPublicAddress(a.address))
    if (bad) {
      const error: NodeJS.ErrnoException = new Error(refusal(hostname, bad.address))
      error.code = "EACCES"
      return callback(error, "")
    }
    if (options.all) return callback(null, addresses)
    callback(null, addresses[0]!.address, addresses[0]!.family)
  })
}

let publicFetch: Promise<typeof fetch> | undefined

/** fetch over connections whose every address is public (undici's, for its connect-time lookup hook). */
const fetchPublicOnly = (): Promise<typeof fetch> => (publicFetch ??= fetchWith({ lookup: publicLookup }))

export const registryAccess = (ref: ImageReference): Effect.Effect<RegistryAccess> =>
  Effect.gen(function*() {
    const caller = yield* Caller
    if (caller.kind === "operator") return unrestricted
    const listed = yield* operatorListed
    // Exactly as listed: `host` is that host's default port only, `host:port` that port.
    if (listed.includes(ref.registry)) return unrestricted
    const restricted: RegistryAccess = {
      refuseUrl: (url) => {
        const host = url.hostname.replace(/^\[|\]$/g, "")
        return Net.isIP(host) !== 0 && !isPublicAddress(host) ? refusal(host, host) : undefined
      },
      fetch: (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => (await fetchPublicOnly())(input, init)) as typeof fetch
    }
    return restricted
  })
