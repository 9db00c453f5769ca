/**
 * The registry's HTTP API (distribution spec v2) over fetch: anonymous bearer
 * tokens fetched on demand and cached per access level, the registry's own
 * credentials (credentials.ts) sent with Basic only to its origin and to a
 * token realm only on its host, a timeout on every request and an idle
 * timeout on every body, and redirects followed by hand so credentials never
 * go to another origin.
 *
 * The registry is untrusted: callers bound what they read with `readBody` and
 * validate it with a Schema. So is a tool caller who names it
 * (registryAccess.ts): unless the operator listed the registry, every
 * connection it leads to (redirects and token realms included) must reach a
 * public address, checked when the address is resolved, so a name that
 * resolves elsewhere later (DNS rebinding) gains nothing.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { parseChallenge, type Challenge } from "./challenge.js"
import {
  DocumentTooLarge,
  NotFound,
  RegistryAuthFailed,
  RegistryAuthRequired,
  RegistryHttpError,
  RegistryProtocolError,
  RegistryTimeout,
  RegistryUnreachable
} from "./errors.js"
import { credentialsFor, type RegistryCredentials } from "./credentials.js"
import { formatReference, type ImageReference, registryBaseUrl } from "./reference.js"
import { registryAccess } from "./registryAccess.js"

export type { RegistryCredentials }

export interface RegistryClientOptions {
  /** Until the response headers arrive. Default 30 seconds. */
  readonly requestTimeout?: Duration.DurationInput
  /** Between two chunks of a body. Default 60 seconds. */
  readonly idleTimeout?: Duration.DurationInput
  /** Default: the registry's own, from auth.json or PYRO_REGISTRY_* (credentials.ts), else anonymous. */
  readonly credentials?: RegistryCredentials | undefined
}

export type Access = "pull" | "push"

export interface RegistryRequest {
  readonly method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE"
  /** A path on the registry (`/v2/...`) or an absolute URL (an upload Location). */
  readonly url: string
  readonly access: Access
  readonly headers?: Readonly<Record<string, string>>
  /** Must be re-sendable: the request is repeated after an authentication challenge. */
  readonly body?: Uint8Array | Blob
}

export type RequestError =
  | RegistryUnreachable
  | RegistryTimeout
  | RegistryAuthRequired
  | RegistryAuthFailed
  | RegistryProtocolError

export type BodyError = RegistryUnreachable | RegistryTimeout

export interface RegistryClient {
  readonly reference: ImageReference
  /** The reference as shown in errors. */
  readonly label: string
  /** `http[s]://host[:port]`. */
  readonly baseUrl: string
  /** `/v2/<repository>` + `suffix`. */
  readonly repoPath: (suffix: string) => string
  /** Send a request, authenticating as the registry asks. Any status but 401 is returned to the caller. */
  readonly send: (request: RegistryRequest) => Effect.Effect<Response, RequestError>
  /** The response body as a stream, failing if the registry stalls. */
  readonly body: (request: RegistryRequest, response: Response) => Stream.Stream<Uint8Array, BodyError>
  /** The whole body, refusing more than `limit` bytes. */
  readonly readBody: (
    request: RegistryRequest,
    response: Response,
    limit: number,
    what: string
  ) => Effect.Effect<Uint8Array, BodyError | DocumentTooLarge>
  /** The failure for an unexpected status: NotFound for 404, else RegistryHttpError with the registry's message. */
  readonly unexpected: (
    request: RegistryRequest,
    response: Response,
    what: string
  ) => Effect.Effect<never, NotFound | RegistryHttpError>
  /** Release a response whose body is not wanted. */
  readonly discard: (response: Response) => Effect.Effect<void>
}

const MAX_REDIRECTS = 5
const TOKEN_RESPONSE_LIMIT = 1024 * 1024
const ERROR_BODY_LIMIT = 64 * 1024

const TokenResponse = Schema.parseJson(Schema.Struct({
  token: Schema.optional(Schema.String),
  access_token: Schema.optional(Schema.String),
  expires_in: Schema.optional(Schema.Number)
}))

const ErrorBody = Schema.parseJson(Schema.Struct({
  errors: Schema.Array(Schema.Struct({
    code: Schema.optional(Schema.String),
    message: Schema.optional(Schema.String)
  }))
}))

const describeFetchError = (error: unknown): string => {
  if (error instanceof Error) {
    const cause = error.cause
    if (cause instanceof Error) {
      const code = "code" in cause && typeof cause.code === "string" ? `${cause.code}: ` : ""
      return `${code}${cause.message}`
    }
    return error.message
  }
  return String(error)
}

const toBytes = (chunks: Array<Uint8Array>, total: number) => {
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

export const makeRegistryClient = (
  reference: ImageReference,
  options: RegistryClientOptions = {}
): Effect.Effect<RegistryClient> =>
  Effect.gen(function*() {
    const credentials = "credentials" in options ? options.credentials : yield* credentialsFor(reference)
    const access = yield* registryAccess(reference)
    const requestTimeout = Duration.decode(options.requestTimeout ?? "30 seconds")
    const idleTimeout = Duration.decode(options.idleTimeout ?? "60 seconds")
    const label = formatReference(reference)
    const base = registryBaseUrl(reference)
    const origin = new URL(base).origin
    const tokens = new Map<Access, { readonly token: string; readonly expiresAt: number }>()
    let useBasic = false
    // Concurrent requests challenged together fetch one token, not one each.
    const tokenLock = yield* Effect.makeSemaphore(1)

    const basicHeader = (c: RegistryCredentials) =>
      `Basic ${Buffer.from(`${c.username}:${Redacted.value(c.password)}`).toString("base64")}`

    const authorizationFor = (level: Access): string | undefined => {
      if (useBasic && credentials) return basicHeader(credentials)
      const now = Date.now()
      for (const key of level === "pull" ? ["pull", "push"] as const : ["push"] as const) {
        const cached = tokens.get(key)
        if (cached && cached.expiresAt > now) return `Bearer ${cached.token}`
      }
      return undefined
    }

    const timeoutError = (method: string, url: string, duration: Duration.Duration) => () =>
      new RegistryTimeout({ reference: label, method, url, seconds: Duration.toSeconds(duration) })

    const discard = (response: Response) =>
      Effect.promise(() => response.body?.cancel().catch(() => undefined) ?? Promise.resolve())

    /** One fetch, following redirects for GET and HEAD; Authorization only ever goes to the registry's origin. */
    const fetchOnce = (
      method: string,
      url: URL,
      headers: Record<string, string>,
      body: Uint8Array | Blob | undefined,
      authorization: { readonly header: string; readonly origin: string } | undefined
    ): Effect.Effect<Response, RegistryUnreachable | RegistryTimeout | RegistryProtocolError> =>
      Effect.gen(function*() {
        let target = url
        for (let hop = 0;; hop++) {
          const sendAuth = authorization !== undefined && target.origin === authorization.origin
          const requestHeaders = { ...headers, ...(sendAuth ? { authorization: authorization.header } : {}) }
          const current = target
          const refused = access.refuseUrl(current)
          if (refused) return yield* new RegistryUnreachable({ reference: label, method, url: current.href, detail: refused })
          const response = yield* Effect.tryPromise({
            try: (signal) =>
              access.fetch(current, {
                method,
                headers: requestHeaders,
                redirect: "manual",
                signal,
                ...(body === undefined ? {} : { body })
              }),
            catch: (error) =>
              new RegistryUnreachable({ reference: label, method, url: current.href, detail: describeFetchError(error) })
          }).pipe(Effect.timeoutFail({ duration: requestTimeout, onTimeout: timeoutError(method, current.href, requestTimeout) }))
          const redirect = [301, 302, 303, 307, 308].includes(response.status) && (method === "GET" || method === "HEAD")
          if (!redirect) return response
          yield* discard(response)
          const location = response.headers.get("location")
          if (!location) {
            return yield* new RegistryProtocolError({ reference: label, detail: `redirect without Location from ${current.href}` })
          }
          if (hop >= MAX_REDIRECTS) {
            return yield* new RegistryProtocolError({ reference: label, detail: `more than ${MAX_REDIRECTS} redirects from ${url.href}` })
          }
          const next = yield* Effect.try({
            try: () => new URL(location, current),
            catch: () => new RegistryProtocolError({ reference: label, detail: `invalid redirect Location "${location}"` })
          })
          if (next.protocol !== "https:" && next.protocol !== "http:") {
            return yield* new RegistryProtocolError({ reference: label, detail: `redirect to unsupported URL ${next.href}` })
          }
          if (current.protocol === "https:" && next.protocol === "http:") {
            return yield* new RegistryProtocolError({ reference: label, detail: `redirect from https to plain http (${next.href})` })
          }
          target = next
        }
      })

    const readLimited = (
      request: { readonly method: string; readonly url: string },
      response: Response,
      limit: number,
      what: string
    ): Effect.Effect<Uint8Array, BodyError | DocumentTooLarge> =>
      Effect.gen(function*() {
        const declared = Number(response.headers.get("content-length") ?? "NaN")
        if (Number.isFinite(declared) && declared > limit) {
          yield* discard(response)
          return yield* new DocumentTooLarge({ reference: label, what, limit })
        }
        const chunks: Array<Uint8Array> = []
        let total = 0
        yield* bodyStream(request, response).pipe(
          Stream.runForEach((chunk) => {
            total += chunk.byteLength
            if (total > limit) return Effect.fail(new DocumentTooLarge({ reference: label, what, limit }))
            chunks.push(chunk)
            return Effect.void
          })
        )
        return toBytes(chunks, total)
      })

    const bodyStream = (
      request: { readonly method: string; readonly url: string },
      response: Response
    ): Stream.Stream<Uint8Array, BodyError> => {
      const body = response.body
      if (!body) return Stream.empty
      return Stream.fromReadableStream({
        evaluate: () => body,
        onError: (error) =>
          new RegistryUnreachable({
            reference: label,
            method: request.method,
            url: response.url || request.url,
            detail: `reading the response failed: ${describeFetchError(error)}`
          })
      }).pipe(Stream.timeoutFail(timeoutError(request.method, response.url || request.url, idleTimeout), idleTimeout))
    }

    const scopeFor = (access: Access) => `repository:${reference.repository}:${access === "push" ? "pull,push" : "pull"}`

    const denied = (status: number, detail: string) =>
      credentials
        ? new RegistryAuthFailed({ reference: label, registry: reference.registry, status, detail })
        : new RegistryAuthRequired({ reference: label, registry: reference.registry, status })

    const fetchToken = (challenge: Challenge, access: Access) =>
      Effect.gen(function*() {
        const realmText = challenge.params["realm"]
        const authFailed = (detail: string, status?: number) =>
          new RegistryAuthFailed({ reference: label, registry: reference.registry, detail, status })
        if (!realmText) return yield* authFailed("bearer challenge without a realm")
        const realm = yield* Effect.try({
          try: () => new URL(realmText),
          catch: () => authFailed(`invalid token realm "${realmText}"`)
        })
        if (realm.protocol !== "https:" && !(realm.protocol === "http:" && reference.scheme === "http")) {
          return yield* authFailed(`token realm ${realm.href} must use https`)
        }
        const scopes = new Set([scopeFor(access)])
        if (challenge.params["scope"]) scopes.add(challenge.params["scope"])
        if (challenge.params["service"]) realm.searchParams.set("service", challenge.params["service"])
        for (const scope of scopes) realm.searchParams.append("scope", scope)
        // The registry's credentials go to a token service on the registry's own host, never
        // elsewhere: a registry (or whoever answers for it) could name any realm.
        // Never in cleartext to a realm when the registry itself is spoken to over TLS.
        const realmCredentials = credentials && realm.hostname === reference.hostname &&
            (realm.protocol === "https:" || reference.scheme === "http")
          ? credentials
          : undefined
        if (realmCredentials) realm.searchParams.set("account", realmCredentials.username)
        const request = { method: "GET", url: realm.href }
        const response = yield* fetchOnce(
          "GET",
          realm,
          { accept: "application/json" },
          undefined,
          realmCredentials ? { header: basicHeader(realmCredentials), origin: realm.origin } : undefined
        )
        if (response.status === 401 || response.status === 403) {
          yield* discard(response)
          const withheld = credentials && !realmCredentials
            ? ` (the credentials for ${reference.registry} are not sent to a token service on another host or over plain HTTP, ${realm.origin})`
            : ""
          return yield* denied(response.status, `the token service ${realm.origin} refused ${[...scopes].join(" ")}${withheld}`)
        }
        if (response.status !== 200) {
          yield* discard(response)
          return yield* authFailed(`token service ${realm.origin}${realm.pathname} answered HTTP ${response.status}`, response.status)
        }
        const bytes = yield* readLimited(request, response, TOKEN_RESPONSE_LIMIT, "token response").pipe(
          Effect.catchTag("DocumentTooLarge", (e) => Effect.fail(authFailed(e.message)))
        )
        const decoded = Schema.decodeUnknownEither(TokenResponse)(new TextDecoder().decode(bytes))
        if (Either.isLeft(decoded)) return yield* authFailed("token service sent a malformed token response")
        const token = decoded.right.token || decoded.right.access_token
        if (!token) return yield* authFailed("token service sent no token")
        if (/[\s\x00-\x1f]/.test(token)) return yield* authFailed("token service sent a malformed token")
        const lifetime = Math.max(decoded.right.expires_in ?? 60, 60)
        tokens.set(access, { token, expiresAt: Date.now() + (lifetime - 10) * 1000 })
      })

    const send = (request: RegistryRequest): Effect.Effect<Response, RequestError> =>
      Effect.gen(function*() {
        const url = yield* Effect.try({
          try: () => new URL(request.url, base),
          catch: () => new RegistryProtocolError({ reference: label, detail: `invalid URL "${request.url}"` })
        })
        const headers = { ...request.headers }
        const attempt = (header: string | undefined) =>
          fetchOnce(request.method, url, headers, request.body, header === undefined ? undefined : { header, origin })
        const firstHeader = authorizationFor(request.access)
        const first = yield* attempt(firstHeader)
        if (first.status !== 401) return first
        const challenge = parseChallenge(first.headers.get("www-authenticate"))
        yield* discard(first)
        if (!challenge) {
          return yield* denied(401, "401 without a WWW-Authenticate challenge")
        }
        if (challenge.scheme === "basic") {
          if (!credentials || firstHeader?.startsWith("Basic ")) return yield* denied(401, "the registry rejected the credentials")
          useBasic = true
        } else if (challenge.scheme === "bearer") {
          yield* tokenLock.withPermits(1)(Effect.suspend(() => {
            const current = authorizationFor(request.access)
            return current !== undefined && current !== firstHeader ? Effect.void : fetchToken(challenge, request.access)
          }))
        } else {
          return yield* new RegistryAuthFailed({
            reference: label,
            registry: reference.registry,
            status: 401,
            detail: `unsupported authentication scheme "${challenge.scheme}"`
          })
        }
        const second = yield* attempt(authorizationFor(request.access))
        if (second.status !== 401) return second
        yield* discard(second)
        return yield* denied(
          401,
          challenge.scheme === "basic" ? "the registry rejected the credentials" : "the registry refused the token it asked for"
        )
      })

    const unexpected = (request: RegistryRequest, response: Response, what: string) =>
      Effect.gen(function*() {
        const bytes = yield* readLimited(request, response, ERROR_BODY_LIMIT, "error response").pipe(
          Effect.orElseSucceed(() => new Uint8Array())
        )
        const text = new TextDecoder().decode(bytes)
        const parsed = Schema.decodeUnknownEither(ErrorBody)(text)
        const detail = Either.isRight(parsed)
          ? parsed.right.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ")
          : text.replace(/\s+/g, " ").trim().slice(0, 200)
        const url = response.url || new URL(request.url, base).href
        if (response.status === 404) {
          return yield* new NotFound({ reference: label, what, status: 404, detail })
        }
        return yield* new RegistryHttpError({ reference: label, method: request.method, url, status: response.status, detail })
      })

    return {
      reference,
      label,
      baseUrl: base,
      repoPath: (suffix: string) => `/v2/${reference.repository}${suffix}`,
      send,
      body: bodyStream,
      readBody: readLimited,
      unexpected,
      discard
    } satisfies RegistryClient
  })
