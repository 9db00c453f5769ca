/**
 * One connection to the guest agent, multiplexed: requests and exec sessions
 * each get a stream id, and a single reader fiber routes the guest's frames to
 * them. Each stream's queue is bounded, so a slow consumer slows the reader,
 * which stops reading the socket and so pushes back on the guest.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { randomBytes } from "node:crypto"
import { GuestChannelError, GuestRequestFailed } from "../errors.js"
import type { ByteTransport } from "../transport.js"
import { MAX_FRAME_PAYLOAD_BYTES, MIN_PROTOCOL_GENERATION, PROTOCOL_GENERATION } from "./constants.js"
import type { Fields } from "./fields.js"
import { encodeFrame, type Frame, FrameDecoder } from "./frame.js"
import { huntHello } from "./hunt.js"
import {
  type AttachRequest,
  attachFrame,
  type RefreshRequest,
  refreshFrame,
  decodeGuestMessage,
  type Exit,
  type ExecRequest,
  execFrame,
  type GuestError,
  type GuestMessage,
  type Hello,
  helloFrame,
  type Output,
  pingFrame,
  poweroffFrame,
  signalFrame,
  stdinEofFrame,
  stdinFrame,
  syncFrame
} from "./messages.js"

/** What an exec stream yields; it ends after Exit or GuestError (the command could not start). */
export type ExecEvent = Output | Exit | GuestError

export interface GuestConnection {
  readonly hello: Hello
  /** The wire generation both sides speak (the agent's answer to our offer). */
  readonly generation: number
  readonly attach: (req: AttachRequest) => Effect.Effect<void, GuestChannelError | GuestRequestFailed>
  /** Clock, entropy and hostname for a VM restored already attached. */
  readonly refresh: (req: RefreshRequest) => Effect.Effect<void, GuestChannelError | GuestRequestFailed>
  readonly sync: Effect.Effect<void, GuestChannelError | GuestRequestFailed>
  readonly poweroff: Effect.Effect<void, GuestChannelError | GuestRequestFailed>
  readonly ping: (payload: Uint8Array) => Effect.Effect<Uint8Array, GuestChannelError>
  /**
   * A request whose OK carries fields (shells), returned unchecked for the
   * caller's schema; an ERROR reply is GuestRequestFailed.
   */
  readonly call: (
    name: string,
    build: (stream: number) => Frame
  ) => Effect.Effect<Fields, GuestChannelError | GuestRequestFailed>
  /**
   * Run a command. Ending the stream early (interruption, or the consumer
   * stopping) kills the command's processes in the guest.
   */
  readonly exec: (
    req: ExecRequest,
    stdin?: Stream.Stream<Uint8Array>
  ) => Stream.Stream<ExecEvent, GuestChannelError>
  /** Fails when the connection dies, with why. */
  readonly closed: Effect.Effect<never, GuestChannelError>
  /** Whether it is still usable (not closed, broken or given up on). */
  readonly isOpen: Effect.Effect<boolean>
}

/**
 * Fails unless the connection speaks `generation` or newer: a feature added to
 * the wire later, asked of an agent booted by an older pyro.
 */
export const requireGeneration = (connection: GuestConnection, generation: number, feature: string) =>
  connection.generation >= generation
    ? Effect.void
    : Effect.fail(
      new GuestChannelError({
        reason: "Protocol",
        detail: `${feature} needs the guest agent's protocol generation ${generation}, and this VM's agent speaks ` +
          `${connection.generation}: it was booted by an older pyro (recreate it to use ${feature})`
      })
    )

/** Frames, not bytes: each holds at most MAX_FRAME_PAYLOAD_BYTES, so a stream's backlog is bounded either way. */
const PER_STREAM_QUEUE = 64
/**
 * Bytes read before the agent's HELLO reply (stale output for an earlier
 * host) after which the guest is given up on: what a hunt may cost.
 */
export const MAX_HELLO_HUNT_BYTES = 4 * MAX_FRAME_PAYLOAD_BYTES
/**
 * How long one write to the guest may wait for room (the lock and the
 * socket). A healthy agent always reads its channel within milliseconds; one
 * that stopped would otherwise hang the host call forever (a kill request
 * queued behind stdin included).
 */
export const WRITE_DEADLINE_MS = 30_000
const SIGKILL = 9

const protocolError = (detail: string) => new GuestChannelError({ reason: "Protocol", detail })

export interface ConnectionOptions {
  /** Default WRITE_DEADLINE_MS. */
  readonly writeDeadlineMs?: number
}

/** Open a connection over `transport` and complete the HELLO handshake. */
export const openGuestConnection = Effect.fn("GuestConnection.open")(function*(
  transport: ByteTransport,
  options: ConnectionOptions = {}
) {
  const streams = new Map<number, Queue.Queue<GuestMessage>>()
  const dead = yield* Deferred.make<never, GuestChannelError>()
  const helloReply = yield* Deferred.make<Hello>()
  const writeLock = yield* Effect.makeSemaphore(1)
  const nonce = randomBytes(16)
  let nextStream = 1

  const writeDeadlineMs = options.writeDeadlineMs ?? WRITE_DEADLINE_MS
  const stuck = new GuestChannelError({
    reason: "Unresponsive",
    detail: `the guest stopped reading its channel: a write waited more than ${writeDeadlineMs / 1000}s`
  })
  const send = (frame: Frame) =>
    Either.match(encodeFrame(frame), {
      onLeft: (e) => Effect.fail(protocolError(e.message)),
      onRight: (bytes) =>
        writeLock.withPermits(1)(transport.write(bytes)).pipe(
          Effect.timeoutFail({ duration: writeDeadlineMs, onTimeout: () => stuck }),
          // The connection is over: everyone waiting on it fails, and the socket goes.
          Effect.tapErrorTag("GuestChannelError", (e) =>
            e === stuck ? Effect.zipRight(Deferred.fail(dead, e), transport.close) : Effect.void)
        )
    })

  const route = (msg: GuestMessage): Effect.Effect<void, GuestChannelError> => {
    if (msg._tag === "Hello") return Deferred.succeed(helloReply, msg)
    if (msg._tag === "GuestError" && msg.stream === 0) {
      return Effect.fail(protocolError(`the agent dropped the connection: ${msg.message}`))
    }
    const queue = streams.get(msg.stream)
    // Frames for streams we no longer listen to (a killed exec) are dropped.
    return queue ? Queue.offer(queue, msg) : Effect.void
  }

  const decoder = new FrameDecoder()
  let prelude: Uint8Array | undefined = new Uint8Array()
  let hunted = 0
  const onChunk = (chunk: Uint8Array): Effect.Effect<void, GuestChannelError> =>
    Effect.suspend(() => {
      let input = chunk
      if (prelude !== undefined) {
        // Every byte before HELLO counts, kept or discarded: a guest that only sends noise is given up on.
        hunted += chunk.byteLength
        if (hunted > MAX_HELLO_HUNT_BYTES) {
          return Effect.fail(protocolError(`no HELLO reply from the agent in the first ${MAX_HELLO_HUNT_BYTES} bytes of the channel`))
        }
        const joined = new Uint8Array(prelude.byteLength + chunk.byteLength)
        joined.set(prelude)
        joined.set(chunk, prelude.byteLength)
        const hunt = huntHello(joined, nonce)
        if (hunt._tag === "NeedMore") {
          prelude = joined.subarray(hunt.discardable)
          return Effect.void
        }
        prelude = undefined
        input = joined.subarray(hunt.offset)
      }
      const frames = decoder.push(input)
      if (Either.isLeft(frames)) return Effect.fail(protocolError(frames.left.message))
      return Effect.forEach(
        frames.right,
        (frame) =>
          Either.match(decodeGuestMessage(frame), {
            onLeft: (e) => Effect.fail(protocolError(e.message)),
            onRight: route
          }),
        { discard: true }
      )
    })

  yield* transport.chunks.pipe(
    Stream.runForEach(onChunk),
    Effect.flatMap(() =>
      Effect.fail(new GuestChannelError({ reason: "Closed", detail: "the guest side closed the channel" }))
    ),
    Effect.catchAll((e) => Deferred.fail(dead, e)),
    Effect.forkScoped
  )

  const awaitDead = Deferred.await(dead)
  // A call still waiting when this host closes the connection (a lease dropped, a scope
  // closed) fails at once instead of waiting for a frame that can no longer come.
  yield* Effect.addFinalizer(() =>
    Deferred.fail(dead, new GuestChannelError({ reason: "Closed", detail: "this host closed the connection" }))
  )

  yield* send(helloFrame(nonce))
  const hello = yield* Effect.raceFirst(Deferred.await(helloReply), awaitDead)
  if (hello.generation < MIN_PROTOCOL_GENERATION || hello.generation > PROTOCOL_GENERATION) {
    return yield* protocolError(
      `the agent answered HELLO with protocol generation ${hello.generation}; this pyro speaks ` +
        `${MIN_PROTOCOL_GENERATION} to ${PROTOCOL_GENERATION}`
    )
  }

  /** Open a stream: register its queue, and unregister it when the scope closes. */
  const openStream = Effect.acquireRelease(
    Effect.gen(function*() {
      const id = nextStream
      nextStream = nextStream >= 0xffff_fffe ? 1 : nextStream + 1
      const queue = yield* Queue.bounded<GuestMessage>(PER_STREAM_QUEUE)
      streams.set(id, queue)
      return { id, queue }
    }),
    ({ id, queue }) =>
      Effect.sync(() => streams.delete(id)).pipe(
        // Free a reader blocked on a full queue that nobody will read again.
        Effect.zipRight(Queue.takeAll(queue))
      )
  )

  const next = (queue: Queue.Queue<GuestMessage>) =>
    Effect.flatMap(
      Queue.poll(queue),
      Option.match({
        onSome: Effect.succeed,
        onNone: () => Effect.raceFirst(Queue.take(queue), awaitDead)
      })
    )

  const call = (name: string, build: (id: number) => Frame) =>
    Effect.scoped(Effect.gen(function*() {
      const { id, queue } = yield* openStream
      yield* send(build(id))
      const reply = yield* next(queue)
      if (reply._tag === "Ok") return reply.fields
      if (reply._tag === "GuestError") {
        return yield* new GuestRequestFailed({
          request: name,
          stage: reply.stage,
          errno: reply.errno,
          detail: reply.message
        })
      }
      return yield* protocolError(`unexpected ${reply._tag} in reply to ${name}`)
    }))
  const request = (name: string, build: (id: number) => Frame) => Effect.asVoid(call(name, build))

  const ping = (payload: Uint8Array) =>
    Effect.scoped(Effect.gen(function*() {
      const { id, queue } = yield* openStream
      yield* send(pingFrame(id, payload))
      const reply = yield* next(queue)
      if (reply._tag !== "Pong") return yield* protocolError(`unexpected ${reply._tag} in reply to PING`)
      return reply.payload
    }))

  const pumpStdin = (id: number, stdin: Stream.Stream<Uint8Array>) =>
    stdin.pipe(
      Stream.rechunk(1),
      Stream.mapConcat((bytes) => {
        const parts: Array<Uint8Array> = []
        for (let i = 0; i < bytes.byteLength; i += 64 * 1024) parts.push(bytes.subarray(i, i + 64 * 1024))
        return parts
      }),
      Stream.runForEach((bytes) => send(stdinFrame(id, bytes))),
      Effect.zipRight(send(stdinEofFrame(id)))
    )

  const exec = (req: ExecRequest, stdin?: Stream.Stream<Uint8Array>): Stream.Stream<ExecEvent, GuestChannelError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const { id, queue } = yield* openStream
      let finished = false
      yield* Effect.addFinalizer(() => finished ? Effect.void : Effect.ignore(send(signalFrame(id, SIGKILL))))
      yield* send(execFrame(id, { ...req, stdin: stdin !== undefined }))
      if (stdin) yield* Effect.forkScoped(Effect.ignore(pumpStdin(id, stdin)))
      const take: Effect.Effect<ExecEvent, Option.Option<GuestChannelError>> = next(queue).pipe(
        Effect.mapError(Option.some),
        Effect.flatMap((msg): Effect.Effect<ExecEvent, Option.Option<GuestChannelError>> => {
          switch (msg._tag) {
            case "Output":
              return Effect.succeed(msg)
            case "Exit":
            case "GuestError":
              finished = true
              return Effect.succeed(msg)
            case "OutputEof":
              return take
            default:
              return Effect.fail(Option.some(protocolError(`unexpected ${msg._tag} on an exec stream`)))
          }
        })
      )
      return Stream.repeatEffectOption(take).pipe(
        Stream.takeUntil((event) => event._tag !== "Output")
      )
    }))

  const connection: GuestConnection = {
    hello,
    generation: hello.generation,
    attach: (req) => request("attach", (id) => attachFrame(id, req)),
    refresh: (req) => request("refresh", (id) => refreshFrame(id, req)),
    sync: request("sync", syncFrame),
    poweroff: request("poweroff", poweroffFrame),
    ping,
    call,
    exec,
    closed: awaitDead,
    isOpen: Effect.map(Deferred.isDone(dead), (done) => !done)
  }
  return connection
}) satisfies (
  transport: ByteTransport,
  options?: ConnectionOptions
) => Effect.Effect<GuestConnection, GuestChannelError, Scope.Scope>
