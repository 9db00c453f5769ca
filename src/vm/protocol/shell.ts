/**
 * PTY shells on the wire (generation 3; docs/guest-protocol.md §14): the
 * requests, and every reply checked against a schema before it is used. A
 * shell is the agent's, named by an id the host chooses, so any connection to
 * the VM reaches it. The guest is untrusted: sizes, cursors and strings in a
 * reply are bounded, and must agree with what was asked.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { pipe } from "effect/Function"
import * as Schema from "effect/Schema"
import { GuestChannelError, type GuestRequestFailed } from "../errors.js"
import { FieldKey, GENERATION_SHELLS, MessageType, SHELL_MAX_SIZE, SHELL_WAIT_CAP_MS } from "./constants.js"
import type { FieldList, Fields } from "./fields.js"
import { control } from "./messages.js"
import { type GuestConnection, requireGeneration } from "./mux.js"

const Int = Schema.Number.pipe(Schema.int())
const Cursor = Int.pipe(Schema.between(0, Number.MAX_SAFE_INTEGER))
/** A wall-clock time in ms that a Date can hold. */
const TimeMs = Int.pipe(Schema.between(0, 8.64e15))
const Size = Int.pipe(Schema.between(1, SHELL_MAX_SIZE))

const ShellFactsFields = {
  id: Schema.String.pipe(Schema.pattern(/^[0-9a-f]{1,32}$/)),
  cwd: Schema.String.pipe(Schema.maxLength(4096)),
  cols: Size,
  rows: Size,
  state: Schema.Literal("running", "stopped"),
  startedMs: TimeMs,
  endedMs: Schema.optional(TimeMs),
  exitCode: Schema.optional(Int.pipe(Schema.between(0, 255))),
  signal: Schema.optional(Int.pipe(Schema.between(0, 64)))
}
const ShellFacts = Schema.Struct(ShellFactsFields)
export type ShellFacts = typeof ShellFacts.Type

const ShellChunk = Schema.Struct({
  ...ShellFactsFields,
  cursor: Cursor,
  output: Schema.Uint8ArrayFromSelf,
  nextCursor: Cursor,
  firstCursor: Cursor,
  endCursor: Cursor
})
/** Output read from a shell: `output` starts at `cursor` (later than asked when older bytes were dropped). */
export type ShellChunk = typeof ShellChunk.Type

const ShellWritten = Schema.Struct({ ...ShellFactsFields, inputBytes: Int.pipe(Schema.nonNegative()) })

const factsOf = (f: Fields) => ({
  id: f.string(FieldKey.SHELL_ID),
  cwd: f.string(FieldKey.CWD),
  cols: f.int(FieldKey.COLS),
  rows: f.int(FieldKey.ROWS),
  state: f.string(FieldKey.SHELL_STATE),
  startedMs: f.int(FieldKey.STARTED_MS),
  endedMs: f.int(FieldKey.ENDED_MS),
  exitCode: f.int(FieldKey.EXIT_CODE),
  signal: f.int(FieldKey.SIGNAL)
})

const invalidReply = (request: string, reason: string) =>
  new GuestChannelError({ reason: "Protocol", detail: `invalid reply to ${request} from the guest: ${reason}` })

/** Checks a reply: its schema, and `agrees` (what must hold between it and the request). */
const decodeReply = <A, I>(
  request: string,
  schema: Schema.Schema<A, I>,
  raw: Record<string, unknown>,
  agrees: (a: A) => string | undefined
) =>
  pipe(
    // Absent optional fields are left out, not undefined (exactOptionalPropertyTypes).
    Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)),
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error" }),
    Either.mapLeft((e) => invalidReply(request, e.message.split("\n").slice(0, 4).join(" "))),
    Either.flatMap((a) => {
      const problem = agrees(a)
      return problem === undefined ? Either.right(a) : Either.left(invalidReply(request, problem))
    })
  )

/** A request answered without a wait is answered at once; this is for a guest that never does. */
const REPLY_GRACE_MS = 15_000

const shellCall = <A, I>(
  connection: GuestConnection,
  request: string,
  type: number,
  id: string,
  fields: FieldList,
  schema: Schema.Schema<A, I>,
  fromFields: (f: Fields) => Record<string, unknown>,
  agrees: (a: A) => string | undefined,
  waitMs = 0
): Effect.Effect<A, GuestChannelError | GuestRequestFailed> =>
  requireGeneration(connection, GENERATION_SHELLS, "shells").pipe(
    Effect.zipRight(connection.call(request, (stream) => control(type, stream, [[FieldKey.SHELL_ID, id], ...fields]))),
    Effect.timeoutFail({
      duration: waitMs + REPLY_GRACE_MS,
      onTimeout: () => new GuestChannelError({ reason: "Unresponsive", detail: `the guest did not answer ${request}` })
    }),
    Effect.flatMap((f) =>
      decodeReply(request, schema, fromFields(f), (a) => {
        const facts = a as ShellFacts
        if (facts.id !== id) return `it is about shell ${facts.id}, not ${id}`
        if ((facts.state === "stopped") !== (facts.endedMs !== undefined && facts.exitCode !== undefined)) {
          return "a stopped shell has an end and an exit code, a running one neither"
        }
        return agrees(a)
      })
    )
  )

const agreeAlways = () => undefined

export interface ShellOpenRequest {
  readonly id: string
  /** Empty: the agent's default, /bin/bash -i (or /bin/sh -i without bash). */
  readonly argv: ReadonlyArray<string>
  readonly env: ReadonlyArray<readonly [string, string]>
  readonly cwd: string
  readonly cols: number
  readonly rows: number
}

export const openShell = (connection: GuestConnection, req: ShellOpenRequest) =>
  shellCall(connection, "shell open", MessageType.SHELL_OPEN, req.id, [
    ...req.argv.map((a) => [FieldKey.ARG, a] as const),
    ...req.env.map(([k, v]) => [FieldKey.ENV, `${k}=${v}`] as const),
    [FieldKey.CWD, req.cwd],
    [FieldKey.COLS, req.cols],
    [FieldKey.ROWS, req.rows]
  ], ShellFacts, factsOf, agreeAlways)

export interface ShellReadRequest {
  readonly id: string
  readonly cursor: number
  readonly maxBytes: number
  /** 0: answer at once; else once the shell has written nothing for this long (the agent caps the wait). */
  readonly waitIdleMs: number
}

export const readShell = (connection: GuestConnection, req: ShellReadRequest) =>
  shellCall(
    connection,
    "shell read",
    MessageType.SHELL_READ,
    req.id,
    [[FieldKey.CURSOR, req.cursor], [FieldKey.MAX_BYTES, req.maxBytes], [FieldKey.WAIT_IDLE_MS, req.waitIdleMs]],
    ShellChunk,
    (f) => ({
      ...factsOf(f),
      cursor: f.int(FieldKey.CURSOR),
      output: f.bytes(FieldKey.OUTPUT),
      nextCursor: f.int(FieldKey.NEXT_CURSOR),
      firstCursor: f.int(FieldKey.FIRST_CURSOR),
      endCursor: f.int(FieldKey.END_CURSOR)
    }),
    (c) => {
      if (c.output.byteLength > req.maxBytes) return `${c.output.byteLength} bytes of output for at most ${req.maxBytes}`
      if (c.cursor < req.cursor || (c.cursor > req.cursor && c.cursor !== c.firstCursor)) {
        return `output from ${c.cursor} for a read from ${req.cursor}`
      }
      if (c.nextCursor !== c.cursor + c.output.byteLength) return "next_cursor is not where the output ends"
      if (c.firstCursor > c.cursor || c.nextCursor > c.endCursor) return "cursors out of order"
      return undefined
    },
    req.waitIdleMs > 0 ? SHELL_WAIT_CAP_MS : 0
  )

export const writeShell = (connection: GuestConnection, id: string, input: Uint8Array) =>
  shellCall(connection, "shell write", MessageType.SHELL_WRITE, id, [[FieldKey.INPUT, input]], ShellWritten, (f) => ({
    ...factsOf(f),
    inputBytes: f.int(FieldKey.INPUT_BYTES)
  }), (w) => (w.inputBytes === input.byteLength ? undefined : `took ${w.inputBytes} of ${input.byteLength} bytes`))

/** The signals a shell takes, as the host names them. */
export const SHELL_SIGNALS = { HUP: 1, INT: 2, KILL: 9, TERM: 15 } as const
export type ShellSignalName = keyof typeof SHELL_SIGNALS

export const signalShell = (connection: GuestConnection, id: string, signal: ShellSignalName) =>
  shellCall(connection, "shell signal", MessageType.SHELL_SIGNAL, id, [[FieldKey.SIGNAL, SHELL_SIGNALS[signal]]], ShellFacts, factsOf, agreeAlways)

/** Answered once the shell has stopped (HUP, then KILL after a second); the agent then forgets it. */
export const closeShell = (connection: GuestConnection, id: string) =>
  shellCall(connection, "shell close", MessageType.SHELL_CLOSE, id, [], ShellFacts, factsOf, (f) =>
    f.state === "stopped" ? undefined : "a closed shell still running")

export const resizeShell = (connection: GuestConnection, id: string, cols: number, rows: number) =>
  shellCall(connection, "shell resize", MessageType.SHELL_RESIZE, id, [[FieldKey.COLS, cols], [FieldKey.ROWS, rows]], ShellFacts, factsOf, agreeAlways)
