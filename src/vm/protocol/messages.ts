/**
 * Messages: what each frame means. Host-to-guest messages are built here;
 * guest-to-host frames are decoded and checked against a Schema, because the
 * guest is untrusted: nothing it sends is used before it is validated.
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { pipe } from "effect/Function"
import * as Schema from "effect/Schema"
import { Fd, FieldKey, MAX_NONCE_BYTES, MessageType, PROTOCOL_GENERATION } from "./constants.js"
import { decodeFields, encodeFields, type FieldList, type Fields } from "./fields.js"
import type { Frame } from "./frame.js"

/** The guest sent something that is not a valid message. */
export class GuestMessageInvalid extends Data.TaggedError("GuestMessageInvalid")<{
  readonly type: number
  readonly reason: string
}> {
  override get message() {
    return `invalid message (type ${this.type}) from the guest: ${this.reason}`
  }
}

const BoundedString = (max: number) => Schema.String.pipe(Schema.maxLength(max))
const Int = Schema.Number.pipe(Schema.int())
const NonNegativeInt = Int.pipe(Schema.nonNegative())

export const Hello = Schema.TaggedStruct("Hello", {
  generation: Int.pipe(Schema.between(1, 0xffff)),
  nonce: Schema.Uint8ArrayFromSelf,
  state: Schema.Literal("ready", "attached"),
  agentVersion: BoundedString(128),
  uptimeNs: NonNegativeInt,
  modulesNs: NonNegativeInt,
  rootNs: NonNegativeInt
})
export type Hello = typeof Hello.Type

export const Ok = Schema.TaggedStruct("Ok", { stream: NonNegativeInt })
/** An OK with its fields, unchecked: the reply's own schema checks them (shell replies carry facts). */
export type OkReply = typeof Ok.Type & { readonly fields: Fields }
export const GuestError = Schema.TaggedStruct("GuestError", {
  stream: NonNegativeInt,
  errno: NonNegativeInt,
  stage: BoundedString(64),
  message: BoundedString(4096)
})
export type GuestError = typeof GuestError.Type
export const Exit = Schema.TaggedStruct("Exit", {
  stream: NonNegativeInt,
  exitCode: Int.pipe(Schema.between(0, 255)),
  signal: Int.pipe(Schema.between(0, 64)),
  timedOut: Schema.Boolean
})
export type Exit = typeof Exit.Type

export interface Output {
  readonly _tag: "Output"
  readonly stream: number
  readonly fd: 1 | 2
  readonly bytes: Uint8Array
}
export interface OutputEof {
  readonly _tag: "OutputEof"
  readonly stream: number
  readonly fd: 1 | 2
}
export interface Pong {
  readonly _tag: "Pong"
  readonly stream: number
  readonly payload: Uint8Array
}

export type GuestMessage =
  | Hello
  | OkReply
  | GuestError
  | Exit
  | Output
  | OutputEof
  | Pong

const invalid = (frame: Frame, reason: string) => new GuestMessageInvalid({ type: frame.type, reason })

const decodeWith = <A, I>(schema: Schema.Schema<A, I>, frame: Frame, raw: unknown) =>
  pipe(
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error" })(raw),
    Either.mapLeft((e) => invalid(frame, e.message.split("\n").slice(0, 4).join(" ")))
  )

const withFields = <A>(frame: Frame, f: (fields: Fields) => Either.Either<A, GuestMessageInvalid>) =>
  pipe(
    decodeFields(frame.payload),
    Either.mapLeft((e) => invalid(frame, e.message)),
    Either.flatMap(f)
  )

const outputFd = (frame: Frame): 1 | 2 | undefined =>
  frame.flags === Fd.STDOUT ? 1 : frame.flags === Fd.STDERR ? 2 : undefined

const bool = (n: number | undefined) => (n === undefined ? undefined : n === 1 ? true : n === 0 ? false : n)

export const decodeGuestMessage = (frame: Frame): Either.Either<GuestMessage, GuestMessageInvalid> => {
  switch (frame.type) {
    case MessageType.HELLO:
      if (frame.stream !== 0) return Either.left(invalid(frame, "HELLO on a stream other than 0"))
      return withFields(frame, (f) =>
        decodeWith(Hello, frame, {
          _tag: "Hello",
          generation: f.int(FieldKey.GENERATION),
          nonce: f.bytes(FieldKey.NONCE) ?? new Uint8Array(),
          state: f.string(FieldKey.STATE),
          agentVersion: f.string(FieldKey.AGENT_VERSION) ?? "",
          uptimeNs: f.int(FieldKey.UPTIME_NS) ?? 0,
          modulesNs: f.int(FieldKey.MODULES_NS) ?? 0,
          rootNs: f.int(FieldKey.ROOT_NS) ?? 0
        }))
    case MessageType.OK:
      return withFields(frame, (fields) =>
        Either.map(decodeWith(Ok, frame, { _tag: "Ok", stream: frame.stream }), (ok): OkReply => ({ ...ok, fields })))
    case MessageType.ERROR:
      return withFields(frame, (f) =>
        decodeWith(GuestError, frame, {
          _tag: "GuestError",
          stream: frame.stream,
          errno: f.int(FieldKey.ERRNO) ?? 0,
          stage: f.string(FieldKey.STAGE) ?? "",
          message: f.string(FieldKey.MESSAGE) ?? ""
        }))
    case MessageType.EXIT:
      return withFields(frame, (f) =>
        decodeWith(Exit, frame, {
          _tag: "Exit",
          stream: frame.stream,
          exitCode: f.int(FieldKey.EXIT_CODE),
          signal: f.int(FieldKey.SIGNAL) ?? 0,
          timedOut: bool(f.int(FieldKey.TIMED_OUT)) ?? false
        }))
    case MessageType.DATA: {
      const fd = outputFd(frame)
      if (fd === undefined) return Either.left(invalid(frame, `DATA for fd ${frame.flags}`))
      // The agent never sends one; a flood of them would cost the host work for no bytes.
      if (frame.payload.byteLength === 0) return Either.left(invalid(frame, "empty DATA"))
      return Either.right({ _tag: "Output", stream: frame.stream, fd, bytes: frame.payload })
    }
    case MessageType.EOF: {
      const fd = outputFd(frame)
      if (fd === undefined) return Either.left(invalid(frame, `EOF for fd ${frame.flags}`))
      return Either.right({ _tag: "OutputEof", stream: frame.stream, fd })
    }
    case MessageType.PONG:
      return Either.right({ _tag: "Pong", stream: frame.stream, payload: frame.payload })
    default:
      return Either.left(invalid(frame, "unknown message type"))
  }
}

export const control = (type: number, stream: number, fields: FieldList): Frame => ({
  type,
  flags: 0,
  stream,
  payload: encodeFields(fields)
})

/** `nonce` is at most MAX_NONCE_BYTES; the agent rejects longer ones. */
export const helloFrame = (nonce: Uint8Array): Frame =>
  control(MessageType.HELLO, 0, [
    [FieldKey.GENERATION, PROTOCOL_GENERATION],
    [FieldKey.NONCE, nonce.subarray(0, MAX_NONCE_BYTES)]
  ])

/** A VM's own clock, entropy and hostname: part of ATTACH, and all of REFRESH. */
export interface RefreshRequest {
  readonly realtimeNs: bigint
  readonly entropy: Uint8Array
  readonly hostname: string
}

export interface AttachRequest extends RefreshRequest {
  readonly scratchSerial: string
}

const identityFields = (req: RefreshRequest): FieldList => [
  [FieldKey.REALTIME_NS, req.realtimeNs],
  [FieldKey.ENTROPY, req.entropy],
  [FieldKey.HOSTNAME, req.hostname]
]

export const attachFrame = (stream: number, req: AttachRequest): Frame =>
  control(MessageType.ATTACH, stream, [[FieldKey.SCRATCH_SERIAL, req.scratchSerial], ...identityFields(req)])

/** For a restored clone of an attached template (see REFRESH). */
export const refreshFrame = (stream: number, req: RefreshRequest): Frame =>
  control(MessageType.REFRESH, stream, identityFields(req))

export interface ExecRequest {
  readonly argv: ReadonlyArray<string>
  readonly env: ReadonlyArray<readonly [string, string]>
  readonly cwd: string
  /** 0: no limit. */
  readonly timeoutMs: number
  readonly stdin: boolean
}

export const execFrame = (stream: number, req: ExecRequest): Frame =>
  control(MessageType.EXEC, stream, [
    ...req.argv.map((a) => [FieldKey.ARG, a] as const),
    ...req.env.map(([k, v]) => [FieldKey.ENV, `${k}=${v}`] as const),
    [FieldKey.CWD, req.cwd],
    [FieldKey.TIMEOUT_MS, req.timeoutMs],
    [FieldKey.STDIN, req.stdin]
  ])

export const stdinFrame = (stream: number, bytes: Uint8Array): Frame => ({
  type: MessageType.DATA,
  flags: Fd.STDIN,
  stream,
  payload: bytes
})

export const stdinEofFrame = (stream: number): Frame => ({
  type: MessageType.EOF,
  flags: Fd.STDIN,
  stream,
  payload: new Uint8Array()
})

export const signalFrame = (stream: number, signal: number): Frame =>
  control(MessageType.SIGNAL, stream, [[FieldKey.SIGNAL, signal]])

export const pingFrame = (stream: number, payload: Uint8Array): Frame => ({
  type: MessageType.PING,
  flags: 0,
  stream,
  payload
})

export const syncFrame = (stream: number): Frame => control(MessageType.SYNC, stream, [])
export const poweroffFrame = (stream: number): Frame => control(MessageType.POWEROFF, stream, [])
