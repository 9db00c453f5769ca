/**
 * The guest is untrusted. A scripted peer on a real unix socket plays a guest
 * that answers the handshake and then misbehaves; the host must fail the
 * affected work with a clear error and never crash or hang.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { connectAgent } from "../../src/vm/agentConnection.js"
import { FieldKey, FRAME_HEADER_BYTES, MessageType, PROTOCOL_GENERATION } from "../../src/vm/protocol/constants.js"
import { decodeFields, encodeFields } from "../../src/vm/protocol/fields.js"
import { encodeFrame, FrameDecoder } from "../../src/vm/protocol/frame.js"
import { frozenScratch } from "../../src/vm/protocol/freeze.js"
import { MAX_HELLO_HUNT_BYTES } from "../../src/vm/protocol/mux.js"
import { CappedOutput } from "../../src/vm/output.js"
import { listGuestFiles } from "../../src/workspace/guestFs.js"
import { listGuestServices } from "../../src/workspace/guestServices.js"

type Behaviour = (socket: Net.Socket, execStream: number) => void

const frame = (type: number, stream: number, payload: Uint8Array, flags = 0) =>
  Either.getOrThrow(encodeFrame({ type, flags, stream, payload }))

/** A peer that completes the handshake (answering with `generation`), then on the first EXEC does `behaviour`. */
const hostilePeer = (behaviour: Behaviour, generation = 1) =>
  Effect.acquireRelease(
    Effect.async<{ path: string; server: Net.Server }>((resume) => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-hostile-"))
      const path = Path.join(dir, "channel.sock")
      const server = Net.createServer((socket) => {
        const decoder = new FrameDecoder()
        socket.on("error", () => {})
        socket.on("data", (chunk) => {
          for (const f of Either.getOrElse(decoder.push(chunk), () => [])) {
            if (f.type === MessageType.HELLO) {
              const nonce = Either.getOrThrow(decodeFields(f.payload)).bytes(FieldKey.NONCE)!
              socket.write(frame(MessageType.HELLO, 0, encodeFields([
                [FieldKey.GENERATION, generation],
                [FieldKey.NONCE, nonce],
                [FieldKey.STATE, "attached"],
                [FieldKey.AGENT_VERSION, "hostile"]
              ])))
            } else if (f.type === MessageType.EXEC) {
              behaviour(socket, f.stream)
            }
          }
        })
      })
      server.listen(path, () => resume(Effect.succeed({ path, server })))
    }),
    ({ path, server }) => Effect.sync(() => {
      server.close()
      Fs.rmSync(Path.dirname(path), { recursive: true, force: true })
    })
  )

const execTrue = (path: string) =>
  Effect.scoped(Effect.gen(function*() {
    const connection = yield* connectAgent(path)
    return yield* connection.exec({ argv: ["true"], env: [], cwd: "/", timeoutMs: 0, stdin: false }).pipe(
      Stream.runCollect,
      Effect.timeout("5 seconds")
    )
  }))

const failsWith = (behaviour: Behaviour) =>
  Effect.scoped(Effect.gen(function*() {
    const { path } = yield* hostilePeer(behaviour)
    const exit = yield* Effect.exit(execTrue(path))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) return String(exit.cause)
    return ""
  }))

/** A peer that answers the handshake, then plays `behaviour` on the connection (no EXEC needed). */
const scriptedPeer = (behaviour: (socket: Net.Socket) => void, helloPrefix: Uint8Array = new Uint8Array()) =>
  Effect.acquireRelease(
    Effect.async<{ path: string; server: Net.Server }>((resume) => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-hostile-"))
      const path = Path.join(dir, "channel.sock")
      const server = Net.createServer((socket) => {
        socket.on("error", () => {})
        socket.once("data", (chunk) => {
          const decoded = Either.getOrThrow(new FrameDecoder().push(chunk))[0]!
          const nonce = Either.getOrThrow(decodeFields(decoded.payload)).bytes(FieldKey.NONCE)!
          socket.write(helloPrefix)
          socket.write(frame(MessageType.HELLO, 0, encodeFields([
            [FieldKey.GENERATION, 1],
            [FieldKey.NONCE, nonce],
            [FieldKey.STATE, "attached"],
            [FieldKey.AGENT_VERSION, "hostile"]
          ])))
          behaviour(socket)
        })
      })
      server.listen(path, () => resume(Effect.succeed({ path, server })))
    }),
    ({ path, server }) => Effect.sync(() => {
      server.close()
      Fs.rmSync(Path.dirname(path), { recursive: true, force: true })
    })
  )

/** Host memory that a flood could grow: the JS heap plus buffers outside it. */
const hostBytes = () => {
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

describe("a hostile guest's bytes cost the host a bounded amount", () => {
  it.live("empty DATA frames are refused: the connection ends at the first", () =>
    Effect.gen(function*() {
      const cause = yield* failsWith((socket, stream) => {
        const empty = frame(MessageType.DATA, stream, new Uint8Array(), 1)
        socket.write(Buffer.concat(Array.from({ length: 1024 * 1024 }, () => empty))) // 12 MiB of them
      })
      expect(cause).toContain("empty DATA")
    }))

  it.live("a flood of one-byte DATA frames costs no memory per frame", () =>
    Effect.scoped(Effect.gen(function*() {
      const frames = 300_000
      const { path } = yield* hostilePeer((socket, stream) => {
        const one = frame(MessageType.DATA, stream, new Uint8Array([0x79]), 1)
        socket.write(Buffer.concat(Array.from({ length: frames }, () => one)))
        socket.write(frame(MessageType.EXIT, stream, encodeFields([[FieldKey.EXIT_CODE, 0]])))
      })
      const gc = (globalThis as { gc?: () => void }).gc!
      gc()
      const before = hostBytes()
      const out = new CappedOutput(16 * 1024 * 1024)
      yield* Effect.scoped(Effect.gen(function*() {
        const connection = yield* connectAgent(path)
        yield* connection.exec({ argv: ["yes"], env: [], cwd: "/", timeoutMs: 0, stdin: false }).pipe(
          Stream.runForEach((event) => Effect.sync(() => event._tag === "Output" && out.push(event.bytes))),
          Effect.timeout("60 seconds")
        )
      }))
      gc()
      const retained = hostBytes() - before
      expect(out.total).toBe(frames)
      // 300 KB of output kept in one buffer; an object per frame would hold tens of MB.
      expect(retained).toBeLessThan(8 * 1024 * 1024)
    })), 90_000)

  it.live("a guest that stops reading fails the call at the write deadline instead of hanging it", () =>
    Effect.scoped(Effect.gen(function*() {
      const { path } = yield* scriptedPeer((socket) => socket.pause())
      const started = Date.now()
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const connection = yield* connectAgent(path, { writeDeadlineMs: 1_000 })
        const stdin = Stream.repeatValue(new Uint8Array(64 * 1024)).pipe(Stream.take(1024)) // 64 MiB
        return yield* connection.exec({ argv: ["cat"], env: [], cwd: "/", timeoutMs: 0, stdin: true }, stdin).pipe(
          Stream.runDrain
        )
      })))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("the guest stopped reading its channel")
      expect(Date.now() - started).toBeLessThan(20_000)
    })), 30_000)

  it.live("the HELLO hunt gives up after a bounded number of bytes of noise", () =>
    Effect.scoped(Effect.gen(function*() {
      // Noise that keeps looking like the start of a frame, then no HELLO within the cap.
      const noise = Buffer.alloc(MAX_HELLO_HUNT_BYTES + 64 * 1024, 0x50)
      const { path } = yield* scriptedPeer(() => {}, noise)
      const exit = yield* Effect.exit(Effect.scoped(connectAgent(path)).pipe(Effect.timeout("20 seconds")))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain(`no HELLO reply from the agent in the first ${MAX_HELLO_HUNT_BYTES} bytes`)
    })))
})

describe("an agent of an older generation", () => {
  it.live("is never asked to run the file tool it does not have (it would take it for a boot)", () =>
    Effect.scoped(Effect.gen(function*() {
      let execs = 0
      const { path } = yield* hostilePeer(() => void execs++, 1)
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const connection = yield* connectAgent(path)
        expect(connection.generation).toBe(1)
        return yield* listGuestFiles(connection, "0123456789ab", "/workspace", false, 10)
      })))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("needs the guest agent's protocol generation 2")
      expect(execs).toBe(0)
    })))

  it.live("is never asked to run the service tool it does not have", () =>
    Effect.scoped(Effect.gen(function*() {
      let execs = 0
      const { path } = yield* hostilePeer(() => void execs++, 2)
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const connection = yield* connectAgent(path)
        return yield* listGuestServices(connection, "0123456789ab")
      })))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("services needs the guest agent's protocol generation 3")
      expect(execs).toBe(0)
    })))

  it.live("is never sent a FREEZE it does not know (this peer would never answer one)", () =>
    Effect.scoped(Effect.gen(function*() {
      const { path } = yield* hostilePeer(() => {}, 3)
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const connection = yield* connectAgent(path)
        return yield* Effect.scoped(frozenScratch(connection)).pipe(Effect.timeout("5 seconds"))
      })))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("a consistent snapshot needs the guest agent's protocol generation 4")
    })))
})

describe("a hostile guest", () => {
  it.live("that answers HELLO with a protocol generation this host never offered", () =>
    Effect.scoped(Effect.gen(function*() {
      const { path } = yield* hostilePeer(() => {}, PROTOCOL_GENERATION + 6)
      const exit = yield* Effect.exit(Effect.scoped(connectAgent(path)).pipe(Effect.timeout("10 seconds")))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain(
        `answered HELLO with protocol generation ${PROTOCOL_GENERATION + 6}`
      )
    })))

  it.live("that sends a frame with a bad magic", () =>
    Effect.gen(function*() {
      const cause = yield* failsWith((socket) => socket.write(Buffer.alloc(64, 0x41)))
      expect(cause).toContain("GuestChannelError")
      expect(cause).toContain("bad frame magic")
    }))

  it.live("that announces a frame larger than the limit", () =>
    Effect.gen(function*() {
      const cause = yield* failsWith((socket, stream) => {
        const header = Buffer.from(frame(MessageType.DATA, stream, new Uint8Array(), 1).subarray(0, FRAME_HEADER_BYTES))
        header.writeUInt32BE(0xffff_ffff, 8)
        socket.write(header)
      })
      expect(cause).toContain("exceeds")
    }))

  it.live("that reports an impossible exit status", () =>
    Effect.gen(function*() {
      const cause = yield* failsWith((socket, stream) =>
        socket.write(frame(MessageType.EXIT, stream, encodeFields([[FieldKey.EXIT_CODE, 4096]]))))
      expect(cause).toContain("invalid message")
    }))

  it.live("that closes the channel in the middle of a frame", () =>
    Effect.gen(function*() {
      const cause = yield* failsWith((socket, stream) => {
        socket.write(frame(MessageType.DATA, stream, new Uint8Array(100), 1).subarray(0, 50))
        socket.end()
      })
      expect(cause).toContain("closed")
    }))

  it.live("that never finishes the command does not block other work on the connection", () =>
    Effect.scoped(Effect.gen(function*() {
      const { path } = yield* hostilePeer(() => {})
      const connection = yield* connectAgent(path)
      const stuck = connection.exec({ argv: ["sleep"], env: [], cwd: "/", timeoutMs: 0, stdin: false }).pipe(
        Stream.runDrain,
        Effect.timeoutOption("300 millis")
      )
      expect((yield* stuck)._tag).toBe("None")
      // The connection is still readable: the peer ignores PING, so this too
      // times out, but the reader fiber is alive and nothing has crashed.
      const ping = yield* connection.ping(new Uint8Array([1])).pipe(Effect.timeoutOption("200 millis"))
      expect(ping._tag).toBe("None")
    })))
})
