/**
 * The host's side of the agent's file tool (`/proc/1/exe fs ...`,
 * guest/agent/fs.c): list, read and write files under /workspace, and stream
 * a tar of a path for export and diff. The tool confines itself beneath
 * /workspace; its output is still the guest's, so every field is checked
 * and bounded here before anything is used.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { WorkspaceFileError, type WorkspaceFileProblem } from "../contract/errors.js"
import type { ArtifactType } from "../contract/workspace/files.js"
import type { GuestChannelError } from "../vm/errors.js"
import { DEFAULT_GUEST_ENV, runCommand } from "../vm/execCommand.js"
import { CappedOutput } from "../vm/output.js"
import { GENERATION_FILE_TOOL } from "../vm/protocol/constants.js"
import { type GuestConnection, requireGeneration } from "../vm/protocol/mux.js"
import { GUEST_AGENT_BINARY } from "./import/guestUntar.js"

/** A file operation's guest time limit: writes fsync, and TCG is slow. */
const TOOL_TIMEOUT_SECONDS = 120
/** A listing's stdout beyond this is refused rather than held (10,000 entries of long names fit). */
const MAX_LISTING_BYTES = 64 * 1024 * 1024
const STDERR_BYTES = 4096
/** How long one archive of a path may take to stream (an 8 GiB export under TCG included). */
const TAR_TIMEOUT_MS = 60 * 60 * 1000

export interface GuestEntry {
  readonly path: string
  readonly type: ArtifactType
  readonly size: number
  readonly mode: number
  readonly mtime: number
  readonly target: string
}

export interface GuestListing {
  readonly self: GuestEntry
  readonly entries: ReadonlyArray<GuestEntry>
  readonly truncated: boolean
}

/** The tool's exit statuses (fs.c), as the public error's problem. */
const PROBLEMS: Record<number, WorkspaceFileProblem> = {
  3: "not_found",
  4: "outside_workspace",
  5: "wrong_type",
  6: "too_large"
}

const argv = (...args: Array<string>): [string, ...Array<string>] => [GUEST_AGENT_BINARY, "fs", ...args]

interface ToolRun {
  readonly workspaceId: string
  readonly operation: string
  readonly path: string
}

const fileError = (run: ToolRun, problem: WorkspaceFileProblem, detail: string) =>
  new WorkspaceFileError({ workspaceId: run.workspaceId, operation: run.operation, path: run.path, problem, detail })

/** The tool's one-line complaint, shortened to its reason; the guest wrote it, so it is cut and cleaned. */
const complaint = (stderr: CappedOutput, exitCode: number) => {
  const line = new TextDecoder().decode(stderr.view()).trim().split("\n").at(-1) ?? ""
  // "fs: OP: PATH: WHY": the path is ours already; keep the why.
  const why = line.replace(/^fs: [a-z]+: .*: /, "").replace(/[^\x20-\x7e]/g, "?").slice(0, 200)
  return why || `the file tool exited with ${exitCode}`
}

/** Run the tool with stdout held up to `maxStdout`; a failure becomes the public error with the tool's reason. */
const runTool = (
  connection: GuestConnection,
  run: ToolRun,
  args: Array<string>,
  maxStdout: number,
  stdin?: Uint8Array
): Effect.Effect<Uint8Array, WorkspaceFileError | GuestChannelError> =>
  Effect.gen(function*() {
    yield* requireGeneration(connection, GENERATION_FILE_TOOL, "workspace file operations")
    const outcome = yield* runCommand(connection, {
      command: argv(...args),
      cwd: "/",
      timeoutSeconds: TOOL_TIMEOUT_SECONDS,
      maxOutputBytes: maxStdout,
      env: DEFAULT_GUEST_ENV,
      ...(stdin ? { stdin: Stream.make(stdin) } : {})
    })
    if (outcome.exitCode !== 0) {
      return yield* fileError(run, PROBLEMS[outcome.exitCode] ?? "failed", complaint(outcome.stderr, outcome.exitCode))
    }
    if (outcome.stdout.total > maxStdout) {
      return yield* fileError(run, "too_large", `the guest's answer is larger than ${maxStdout} bytes`)
    }
    return outcome.stdout.view()
  })

/** NUL-ended fields; anything after the last NUL is a malformed answer. */
const fields = (bytes: Uint8Array): Array<Uint8Array> | undefined => {
  const out: Array<Uint8Array> = []
  let start = 0
  for (let i = 0; i < bytes.byteLength; i++) {
    if (bytes[i] === 0) {
      out.push(bytes.subarray(start, i))
      start = i + 1
    }
  }
  return start === bytes.byteLength ? out : undefined
}

const utf8 = new TextDecoder("utf-8", { fatal: false })
const TYPES = new Set<string>(["file", "directory", "symlink", "other"])
const decimal = (bytes: Uint8Array | undefined, { signed = false, octal = false } = {}) => {
  const text = bytes ? utf8.decode(bytes) : ""
  if (!(octal ? /^[0-7]{1,6}$/ : signed ? /^-?\d{1,20}$/ : /^\d{1,20}$/).test(text)) return undefined
  const n = octal ? parseInt(text, 8) : Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

const malformed = (run: ToolRun, what: string) => fileError(run, "failed", `the guest's answer is malformed (${what})`)

/** Entries of `path` (and below it, with `recursive`), at most `maxEntries`. */
export const listGuestFiles = (
  connection: GuestConnection,
  workspaceId: string,
  path: string,
  recursive: boolean,
  maxEntries: number
) =>
  Effect.gen(function*() {
    const run = { workspaceId, operation: "list", path }
    const out = yield* runTool(
      connection,
      run,
      ["list", path, ...(recursive ? ["--recursive"] : []), "--max-entries", String(maxEntries)],
      MAX_LISTING_BYTES
    )
    const parts = fields(out)
    if (!parts) return yield* malformed(run, "an unended field")
    const entries: Array<GuestEntry> = []
    let i = 0
    let end: { status: string; count: number } | undefined
    while (i < parts.length) {
      const tag = utf8.decode(parts[i]!)
      if (tag === "end") {
        const count = decimal(parts[i + 2])
        const status = utf8.decode(parts[i + 1] ?? new Uint8Array())
        if (count === undefined || (status !== "complete" && status !== "truncated") || i + 3 !== parts.length) {
          return yield* malformed(run, "its end record")
        }
        end = { status, count }
        break
      }
      if (tag !== "entry" || i + 7 > parts.length) return yield* malformed(run, `record ${entries.length + 1}`)
      const [, rawPath, rawType, rawSize, rawMode, rawMtime, rawTarget] = parts.slice(i, i + 7)
      const entryPath = new TextDecoder("utf-8", { fatal: false }).decode(rawPath)
      const type = utf8.decode(rawType)
      const size = decimal(rawSize)
      const mode = decimal(rawMode, { octal: true })
      const mtime = decimal(rawMtime, { signed: true })
      // Within what a date can hold (±8.64e12 s), or the listing's modified_at could not be written.
      const datable = mtime !== undefined && Math.abs(mtime) <= 8.64e12
      // Every entry is the path asked for or below it: the guest may not make up others.
      const inside = entryPath === path || entryPath.startsWith(`${path}/`)
      if (!inside || !TYPES.has(type) || size === undefined || mode === undefined || mtime === undefined || !datable) {
        return yield* malformed(run, `record ${entries.length + 1}`)
      }
      entries.push({ path: entryPath, type: type as ArtifactType, size, mode, mtime, target: utf8.decode(rawTarget) })
      if (entries.length > maxEntries + 1) return yield* malformed(run, "more entries than asked for")
      i += 7
    }
    if (!end || entries.length === 0 || entries[0]!.path !== path || end.count !== entries.length - 1) {
      return yield* malformed(run, "its entry count")
    }
    return { self: entries[0]!, entries: entries.slice(1), truncated: end.status === "truncated" } satisfies GuestListing
  })

/** Up to `maxBytes` of a file, with its whole size; with `followLink: false` a link at `path` is refused. */
export const readGuestFile = (
  connection: GuestConnection,
  workspaceId: string,
  path: string,
  maxBytes: number,
  followLink = true
) =>
  Effect.gen(function*() {
    const run = { workspaceId, operation: "read", path }
    const out = yield* runTool(connection, run, ["read", path, String(maxBytes), ...(followLink ? [] : ["--no-follow"])], maxBytes + 32)
    const nul = out.indexOf(0)
    const size = nul < 0 ? undefined : decimal(out.subarray(0, nul))
    if (size === undefined) return yield* malformed(run, "no size")
    const content = out.subarray(nul + 1)
    if (content.byteLength > Math.min(size, maxBytes)) return yield* malformed(run, "more bytes than the file holds")
    return { size, content }
  })

/** Replace a file's content atomically (parents made); returns the bytes written. */
export const writeGuestFile = (
  connection: GuestConnection,
  workspaceId: string,
  path: string,
  content: Uint8Array,
  maxBytes: number
) =>
  Effect.gen(function*() {
    const run = { workspaceId, operation: "write", path }
    const out = yield* runTool(connection, run, ["write", path, "--max-bytes", String(maxBytes)], 64, content)
    const parts = fields(out)
    const written = parts?.length === 1 ? decimal(parts[0]) : undefined
    if (written !== content.byteLength) return yield* malformed(run, "a byte count that is not what was sent")
    return written
  })

/**
 * A POSIX tar of `path` (names relative to its parent), streamed as the guest
 * writes it. The stream fails with the tool's reason if it exits non-zero; the
 * archive itself is the guest's and must be read with the export policy.
 */
export const guestTar = (
  connection: GuestConnection,
  workspaceId: string,
  path: string
): Stream.Stream<Uint8Array, WorkspaceFileError | GuestChannelError> =>
  Stream.unwrap(Effect.as(requireGeneration(connection, GENERATION_FILE_TOOL, "workspace export and diff"), Stream.suspend(() => {
    const run = { workspaceId, operation: "export", path }
    const stderr = new CappedOutput(STDERR_BYTES)
    let exit: number | undefined
    const events = connection.exec({
      argv: argv("tar", path),
      env: DEFAULT_GUEST_ENV,
      cwd: "/",
      // A guest that stalls mid-archive is given up on (the agent kills the tool).
      timeoutMs: TAR_TIMEOUT_MS,
      stdin: false
    })
    const body = events.pipe(
      Stream.filterMap((event): Option.Option<Uint8Array> => {
        if (event._tag === "Output") {
          if (event.fd === 2) stderr.push(event.bytes)
          return event.fd === 1 ? Option.some(event.bytes) : Option.none()
        }
        exit = event._tag === "Exit" ? event.exitCode : 127
        return Option.none()
      })
    )
    return Stream.concat(
      body,
      Stream.fromEffect(Effect.suspend(() =>
        exit === 0 ? Effect.succeed(new Uint8Array()) : Effect.fail(
          fileError(run, PROBLEMS[exit ?? 1] ?? "failed", complaint(stderr, exit ?? 1))
        )
      )).pipe(Stream.filter((b) => b.byteLength > 0))
    )
  })))

/** Remove a file or link (never a directory, never through a link). */
export const deleteGuestFile = (connection: GuestConnection, workspaceId: string, path: string) =>
  Effect.gen(function*() {
    const run = { workspaceId, operation: "delete", path }
    const out = yield* runTool(connection, run, ["delete", path], 16)
    if (utf8.decode(out) !== "1\0") return yield* malformed(run, "not the deletion's answer")
  })
