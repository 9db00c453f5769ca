/**
 * A workspace's secrets on the host: `secrets.json` in its directory, mode
 * 0600, their one home outside the guest. Kept because a workspace VM that is
 * booted again (its host restarted, or a guest that stopped answering was
 * killed) gets them back in its tmpfs; the record holds names and kinds only.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { InvalidInput } from "../../contract/errors.js"
import {
  MAX_SECRET_BYTES,
  MIN_SECRET_CHARS,
  type SecretEnv,
  type SecretInput,
  type SecretMetadata
} from "../../contract/workspace/secrets.js"
import { type ImportBounds, importPathFor } from "../import/roots.js"
import { makeRedactor } from "./redact.js"

export const StoredSecret = Schema.Struct({
  name: Schema.String,
  source_kind: Schema.Literal("literal", "file"),
  value: Schema.String
})
export type StoredSecret = typeof StoredSecret.Type

const decodeStored = Schema.decodeUnknownSync(Schema.parseJson(Schema.Array(StoredSecret)))

export const secretsFile = (workspaceDir: string) => Path.join(workspaceDir, "secrets.json")

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** A file secret's value: read by this (the operator's) process, from inside the import roots for a tool caller. */
const readSecretFile = (name: string, filePath: string, bounds: ImportBounds) =>
  Effect.gen(function*() {
    const path = yield* importPathFor("file_path", filePath, bounds)
    const refuse = (why: string) => new InvalidInput({ detail: `secrets: ${name}: file_path ${why}` })
    const bytes = yield* Effect.try({
      try: () => {
        const fd = Fs.openSync(path, Fs.constants.O_RDONLY | Fs.constants.O_NONBLOCK)
        try {
          if (!Fs.fstatSync(fd).isFile()) throw new Error("is not a regular file")
          const buffer = Buffer.alloc(MAX_SECRET_BYTES + 1)
          const n = Fs.readSync(fd, buffer, 0, buffer.length, 0)
          return buffer.subarray(0, n)
        } finally {
          Fs.closeSync(fd)
        }
      },
      catch: (e) => refuse(`cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    })
    if (bytes.length > MAX_SECRET_BYTES) return yield* refuse(`holds more than ${MAX_SECRET_BYTES} bytes`)
    const text = yield* Effect.try({ try: () => utf8.decode(bytes), catch: () => refuse("is not UTF-8 text") })
    // A file ends with a newline by convention; the secret is the line.
    const value = text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text
    if (value.includes("\0")) return yield* refuse("holds a NUL byte")
    if (value.length < MIN_SECRET_CHARS) return yield* refuse(`holds fewer than ${MIN_SECRET_CHARS} characters`)
    return value
  })

/** The secrets as given, with file values read; nothing is written yet. */
export const resolveSecrets = (inputs: ReadonlyArray<SecretInput>, bounds: ImportBounds) =>
  Effect.forEach(inputs, (input) =>
    "value" in input
      ? Effect.succeed<StoredSecret>({ name: input.name, source_kind: "literal", value: input.value })
      : Effect.map(readSecretFile(input.name, input.file_path, bounds), (value) => ({
        name: input.name,
        source_kind: "file" as const,
        value
      })))

export const writeSecrets = (workspaceDir: string, secrets: ReadonlyArray<StoredSecret>) =>
  Effect.sync(() => {
    if (secrets.length === 0) return
    const file = secretsFile(workspaceDir)
    const partial = `${file}.partial`
    Fs.writeFileSync(partial, JSON.stringify(secrets), { mode: 0o600, flag: "w" })
    Fs.renameSync(partial, file)
  })

/** The workspace's secrets; none when it has no file (created without, or by an older pyro). */
export const readSecrets = (workspaceDir: string): Effect.Effect<ReadonlyArray<StoredSecret>> =>
  Effect.sync(() => {
    const file = secretsFile(workspaceDir)
    // Most workspaces have none, and a failed open costs more than a look (every shell read asks).
    if (!Fs.existsSync(file)) return []
    let text: string
    try {
      text = Fs.readFileSync(file, "utf8")
    } catch {
      return []
    }
    return decodeStored(text)
  }).pipe(Effect.orDie)

export const secretMetadata = (secrets: ReadonlyArray<StoredSecret>): ReadonlyArray<SecretMetadata> =>
  secrets.map(({ name, source_kind }) => ({ name, source_kind }))

/** `secret_env` as environment entries, or which secret the workspace does not have. */
export const secretEnvEntries = (secrets: ReadonlyArray<StoredSecret>, secretEnv: SecretEnv | undefined) =>
  Effect.gen(function*() {
    const entries: Array<readonly [string, string]> = []
    for (const [name, variable] of Object.entries(secretEnv ?? {})) {
      const secret = secrets.find((s) => s.name === name)
      if (!secret) {
        const known = secrets.length === 0 ? "it has none" : `it has ${secrets.map((s) => s.name).join(", ")}`
        return yield* new InvalidInput({ detail: `secret_env: the workspace has no secret named ${name} (${known})` })
      }
      entries.push([variable, secret.value] as const)
    }
    return entries
  })

/** What hides this workspace's secret values in output a client sees. */
export const redactorFor = (workspaceDir: string) =>
  Effect.map(readSecrets(workspaceDir), (secrets) => makeRedactor(secrets.map((s) => s.value)))
