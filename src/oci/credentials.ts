/**
 * Registry credentials, each bound to the one registry it is for, as users
 * already keep them:
 *
 * - the containers' `auth.json` (`$REGISTRY_AUTH_FILE`,
 *   `$XDG_RUNTIME_DIR/containers/auth.json`, `~/.config/containers/auth.json`)
 *   and Docker's `config.json` (`$DOCKER_CONFIG/config.json`,
 *   `~/.docker/config.json`): `{"auths": {"HOST[:PORT][/PATH]": {"auth": base64("user:password")}}}`,
 *   the longest key that prefixes `HOST[:PORT]/REPOSITORY` winning, the first
 *   file that has one winning over later ones;
 * - `PYRO_REGISTRY_USERNAME` / `PYRO_REGISTRY_PASSWORD`, for the registry of
 *   `PYRO_REGISTRY` only.
 *
 * A registry gets its own credentials and no other's, whoever named it.
 * Credential helpers (`credHelpers`, `credsStore`) are not run.
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type ImageReference, parseReference } from "./reference.js"

export interface RegistryCredentials {
  readonly username: string
  readonly password: Redacted.Redacted<string>
}

const AuthFile = Schema.parseJson(Schema.Struct({
  auths: Schema.optional(Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      auth: Schema.optional(Schema.String),
      username: Schema.optional(Schema.String),
      password: Schema.optional(Schema.String)
    })
  }))
}))

const optional = (name: string) =>
  Config.option(Config.nonEmptyString(name)).pipe(Effect.map(Option.getOrUndefined), Effect.orElseSucceed(() => undefined))

/** The auth files to look in, first match wins. */
export const authFilePaths = Effect.gen(function*() {
  const home = (yield* optional("HOME")) ?? Os.homedir()
  const explicit = yield* optional("REGISTRY_AUTH_FILE")
  const runtime = yield* optional("XDG_RUNTIME_DIR")
  return [
    ...(explicit ? [explicit] : []),
    ...(runtime ? [Path.join(runtime, "containers", "auth.json")] : []),
    Path.join((yield* optional("XDG_CONFIG_HOME")) ?? Path.join(home, ".config"), "containers", "auth.json"),
    Path.join((yield* optional("DOCKER_CONFIG")) ?? Path.join(home, ".docker"), "config.json")
  ]
})

/** `https://host:port/v1/` and `host:port/ns` alike: lowercase host[:port], then the path, if any. */
const normaliseKey = (key: string) =>
  key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/\/+$/, "").replace(/^[^/]+/, (host) => host.toLowerCase())

const decodeEntry = (entry: { auth?: string | undefined; username?: string | undefined; password?: string | undefined }) => {
  if (entry.auth) {
    const text = Buffer.from(entry.auth, "base64").toString("utf8")
    const colon = text.indexOf(":")
    if (colon > 0) return { username: text.slice(0, colon), password: Redacted.make(text.slice(colon + 1)) }
  }
  if (entry.username && entry.password) return { username: entry.username, password: Redacted.make(entry.password) }
  return undefined
}

/** What one auth file holds for `ref`: the entry whose key is the longest prefix of `host/repository`. */
export const credentialsInAuthFile = (text: string, ref: ImageReference): RegistryCredentials | undefined => {
  const parsed = Schema.decodeUnknownEither(AuthFile)(text)
  if (Either.isLeft(parsed) || !parsed.right.auths) return undefined
  const target = `${ref.registry}/${ref.repository}`
  let best: { readonly length: number; readonly credentials: RegistryCredentials } | undefined
  for (const [key, entry] of Object.entries(parsed.right.auths)) {
    const k = normaliseKey(key)
    // Docker's legacy keys carry a /v1/ or /v2/ path that names no repository.
    const scope = k.replace(/\/v[12]$/, "")
    const matches = target === scope || target.startsWith(`${scope}/`)
    if (!matches || (best && best.length >= scope.length)) continue
    const credentials = decodeEntry(entry)
    if (credentials) best = { length: scope.length, credentials }
  }
  return best?.credentials
}

const fromAuthFiles = (ref: ImageReference) =>
  Effect.map(authFilePaths, (files) => {
    for (const file of files) {
      let text: string
      try {
        text = Fs.readFileSync(file, "utf8")
      } catch {
        continue
      }
      const found = credentialsInAuthFile(text, ref)
      if (found) return found
    }
    return undefined
  })

/** PYRO_REGISTRY_USERNAME / PASSWORD, when both are set: for PYRO_REGISTRY's registry only. */
const fromEnvironment = (ref: ImageReference) =>
  Effect.gen(function*() {
    const env = yield* Config.all({
      username: Config.string("PYRO_REGISTRY_USERNAME"),
      password: Config.redacted("PYRO_REGISTRY_PASSWORD"),
      registry: Config.string("PYRO_REGISTRY")
    }).pipe(Config.option, Effect.orElseSucceed(() => Option.none()))
    if (Option.isNone(env)) return undefined
    const home = parseReference(`${env.value.registry.replace(/\/+$/, "")}/x`, { allowBare: true })
    if (Either.isLeft(home) || home.right.registry !== ref.registry) return undefined
    return { username: env.value.username, password: env.value.password }
  })

/** The credentials for `ref`'s registry, or undefined (anonymous). */
export const credentialsFor = (ref: ImageReference): Effect.Effect<RegistryCredentials | undefined> =>
  Effect.flatMap(fromEnvironment(ref), (env) => (env ? Effect.succeed(env) : fromAuthFiles(ref)))
