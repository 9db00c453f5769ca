/**
 * Image references: `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]`.
 *
 * The host is always explicit (no docker.io default). Registries on loopback
 * addresses, and those named in PYRO_INSECURE_REGISTRIES, are spoken to over
 * plain HTTP; every other one over HTTPS.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { SHA256_DIGEST_PATTERN } from "./digest.js"
import { InvalidReference } from "./errors.js"

export interface ImageReference {
  /** `host[:port]` as it appears in URLs (IPv6 addresses bracketed, host lowercased). */
  readonly registry: string
  /** The host without port or brackets. */
  readonly hostname: string
  readonly repository: string
  /** `latest` unless given; `undefined` only when a digest was given without a tag. */
  readonly tag: string | undefined
  readonly digest: string | undefined
  readonly scheme: "http" | "https"
}

export interface ParseOptions {
  /** Accept `HOST/REPO:TAG` without the `oci://` prefix. */
  readonly allowBare?: boolean
  /** Registries (`host` or `host:port`) to reach over plain HTTP besides loopback ones. */
  readonly insecureRegistries?: ReadonlyArray<string>
}

const SCHEME = "oci://"
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"])
const LABEL = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
const HOST = new RegExp(`^(?:(${LABEL}(?:\\.${LABEL})*)|\\[([0-9a-f:.]+)\\])(?::([0-9]{1,5}))?$`)
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const MAX_REPOSITORY_LENGTH = 255

export const parseReference = (
  input: string,
  options: ParseOptions = {}
): Either.Either<ImageReference, InvalidReference> => {
  const fail = (reason: string) => Either.left(new InvalidReference({ input, reason }))
  let rest = input
  if (rest.startsWith(SCHEME)) rest = rest.slice(SCHEME.length)
  else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(rest)) return fail("only oci:// references are supported")
  else if (!options.allowBare) return fail("expected oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]")
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(rest)) return fail("contains whitespace or control characters")
  if (rest.length > 1024) return fail("longer than 1024 characters")

  const slash = rest.indexOf("/")
  if (slash < 0) return fail("missing repository after the registry host")
  const hostPart = rest.slice(0, slash).toLowerCase()
  let path = rest.slice(slash + 1)

  const host = HOST.exec(hostPart)
  if (!host) return fail(`invalid registry host "${hostPart}"`)
  const hostname = host[1] ?? host[2] ?? ""
  if (host[2] !== undefined && !host[2].includes(":")) return fail(`invalid IPv6 address "${hostPart}"`)
  const port = host[3]
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return fail(`invalid port ${port}`)

  let digest: string | undefined
  const at = path.indexOf("@")
  if (at >= 0) {
    digest = path.slice(at + 1)
    path = path.slice(0, at)
    if (!digest.startsWith("sha256:")) return fail("only sha256 digests are supported")
    if (!SHA256_DIGEST_PATTERN.test(digest)) return fail(`invalid digest "${digest}" (expected sha256:<64 lowercase hex digits>)`)
  }

  let tag: string | undefined
  const colon = path.indexOf(":")
  if (colon >= 0) {
    tag = path.slice(colon + 1)
    path = path.slice(0, colon)
    if (!TAG.test(tag)) return fail(`invalid tag "${tag}"`)
  }

  if (path === "") return fail("missing repository after the registry host")
  if (path.length > MAX_REPOSITORY_LENGTH) return fail(`repository longer than ${MAX_REPOSITORY_LENGTH} characters`)
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT.test(component)) {
      return fail(
        /[A-Z]/.test(component)
          ? `repository must be lowercase ("${path}")`
          : `invalid repository "${path}" (path components are lowercase letters and digits separated by ., _, __ or -)`
      )
    }
  }

  const insecure = new Set((options.insecureRegistries ?? []).map((s) => s.trim().toLowerCase()).filter((s) => s !== ""))
  const plainHttp = LOOPBACK.has(hostname) || insecure.has(hostPart) || insecure.has(hostname)
  return Either.right({
    registry: hostPart,
    hostname,
    repository: path,
    tag: tag ?? (digest === undefined ? "latest" : undefined),
    digest,
    scheme: plainHttp ? "http" : "https"
  })
}

/** Like parseReference, with the insecure registries read from PYRO_INSECURE_REGISTRIES. */
export const loadReference = (input: string, options: { readonly allowBare?: boolean } = {}) =>
  Effect.gen(function*() {
    const insecure = yield* Config.string("PYRO_INSECURE_REGISTRIES").pipe(
      Config.withDefault(""),
      Effect.orElseSucceed(() => "")
    )
    return yield* parseReference(input, { ...options, insecureRegistries: insecure.split(",") })
  })

export const formatReference = (ref: ImageReference) =>
  `${SCHEME}${ref.registry}/${ref.repository}${ref.tag === undefined ? "" : `:${ref.tag}`}` +
  (ref.digest === undefined ? "" : `@${ref.digest}`)

/** What to ask /v2/REPO/manifests/ for: the digest when pinned, else the tag. */
export const manifestReference = (ref: ImageReference) => ref.digest ?? ref.tag ?? "latest"

export const registryBaseUrl = (ref: ImageReference) => `${ref.scheme}://${ref.registry}`
