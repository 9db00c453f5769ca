/**
 * Secrets: values a workspace's commands may use without a client ever seeing
 * them. Given at create (a literal, or a host file the operator's process
 * reads), mapped to environment variables per call with `secret_env`, and
 * replaced by `[REDACTED]` in everything a client reads back.
 */
import * as Schema from "effect/Schema"
import { HostPath } from "./paths.js"

/** What every occurrence of a secret's value becomes in output a client can see. */
export const REDACTED = "[REDACTED]"
export const MAX_SECRETS = 32
/** UTF-8 bytes of one value. */
export const MAX_SECRET_BYTES = 64 * 1024
/** Shorter values would turn ordinary output into `[REDACTED]`. */
export const MIN_SECRET_CHARS = 4

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

export const SecretName = Schema.String.pipe(
  Schema.pattern(SECRET_NAME, {
    message: () => "must be a secret name: a letter or _, then letters, digits or _ (at most 64)"
  }),
  Schema.annotations({ description: "The secret's name (API_TOKEN)." })
)

export const EnvName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, {
    message: () => "must be an environment variable name: a letter or _, then letters, digits or _"
  })
)

export const SecretValue = Schema.String.pipe(
  Schema.filter((s) => {
    if (s.length < MIN_SECRET_CHARS) return `must be at least ${MIN_SECRET_CHARS} characters (shorter values would redact ordinary output)`
    if (Buffer.byteLength(s, "utf8") > MAX_SECRET_BYTES) return `must be at most ${MAX_SECRET_BYTES} bytes of UTF-8`
    if (s.includes("\0")) return "must not contain NUL"
    return true
  }, { jsonSchema: { minLength: MIN_SECRET_CHARS } })
)

export const LiteralSecret = Schema.Struct({ name: SecretName, value: SecretValue })
export const FileSecret = Schema.Struct({
  name: SecretName,
  file_path: HostPath.annotations({ description: "A host file whose UTF-8 text is the value, read when the workspace is created." })
})
export const SecretInput = Schema.Union(LiteralSecret, FileSecret)
export type SecretInput = typeof SecretInput.Type

export const SecretsInput = Schema.Array(SecretInput).pipe(
  Schema.maxItems(MAX_SECRETS),
  Schema.filter((list) => {
    const seen = new Set<string>()
    for (const { name } of list) {
      if (seen.has(name)) return `names the secret ${name} twice`
      seen.add(name)
    }
    return true
  }, { jsonSchema: {} }),
  Schema.annotations({
    description: "Secrets for the workspace's commands: [{name, value}] or [{name, file_path}]. Kept in the guest " +
      "outside /workspace (/run/pyro-secrets, mode 0600); use them with secret_env. Their values never come back: " +
      `every occurrence in output becomes ${REDACTED}.`
  })
)

/** `secret_env`: secret name → the environment variable it fills for this call. */
// Keys are checked by a filter: a Record's key schema would drop a bad key without a word.
export const SecretEnv = Schema.Record({ key: Schema.String, value: EnvName }).pipe(
  Schema.filter((map) => {
    const keys = Object.keys(map)
    if (keys.length > MAX_SECRETS) return `at most ${MAX_SECRETS} entries`
    const bad = keys.find((k) => !SECRET_NAME.test(k))
    return bad === undefined || `${JSON.stringify(bad)} is not a secret name (a letter or _, then letters, digits or _)`
  }, { jsonSchema: {} }),
  Schema.annotations({
    description: "Workspace secrets to expose to this command as environment variables: {SECRET_NAME: ENV_VAR}, " +
      "e.g. {\"API_TOKEN\": \"API_TOKEN\"}."
  })
)
export type SecretEnv = typeof SecretEnv.Type

/** What status shows of a secret: never its value. */
export const SecretMetadata = Schema.Struct({
  name: Schema.String,
  source_kind: Schema.Literal("literal", "file")
})
export type SecretMetadata = typeof SecretMetadata.Type
