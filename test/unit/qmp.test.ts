/**
 * The QMP client gives up on a QEMU that never listens (it died before
 * creating its socket, or left the socket file behind), within its timeout
 * and when interrupted: a start must never hang on a dead VMM.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { connectQmp } from "../../src/vm/qemu/qmp.js"
import { scopedTempDir } from "../support/tempDir.js"

const scratchDir = () => scopedTempDir("pyro-qmp-")

describe("connectQmp", () => {
  it.scopedLive("fails at its timeout when no socket ever appears", () =>
    Effect.gen(function*() {
      const dir = yield* scratchDir()
      const started = Date.now()
      const result = yield* Effect.either(Effect.scoped(connectQmp(Path.join(dir, "qmp.sock"), 200)))
      expect(result._tag).toBe("Left")
      expect(Date.now() - started).toBeLessThan(5_000)
    }))

  it.scopedLive("fails at its timeout when the socket file outlived its listener", () =>
    Effect.gen(function*() {
      const dir = yield* scratchDir()
      const path = Path.join(dir, "qmp.sock")
      // Nothing listens behind the path: every connect is refused (ECONNREFUSED).
      Fs.writeFileSync(path, "")
      const result = yield* Effect.either(Effect.scoped(connectQmp(path, 200)))
      expect(result._tag).toBe("Left")
    }))

  it.scopedLive("can be interrupted while it waits", () =>
    Effect.gen(function*() {
      const dir = yield* scratchDir()
      const started = Date.now()
      const winner = yield* Effect.raceFirst(
        Effect.as(Effect.scoped(connectQmp(Path.join(dir, "qmp.sock"), 60_000)), "connected"),
        Effect.as(Effect.sleep("100 millis"), "gave up")
      )
      expect(winner).toBe("gave up")
      expect(Date.now() - started).toBeLessThan(5_000)
    }))
})
