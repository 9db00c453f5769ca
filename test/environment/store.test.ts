/**
 * The environment cache with a real build (the tiny environment, in a cache of
 * its own): install, verify, repair of damaged installs, prune, and errors.
 */
import { afterAll, expect, layer } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { findEntry } from "../../src/environment/catalog.js"
import { EnvironmentStoreLive } from "../../src/layers/EnvironmentStoreLive.js"
import { layerWith } from "../../src/layers/PyroConfigLive.js"
import { EnvironmentStore } from "../../src/services/EnvironmentStore.js"
import { ProgressSilent } from "../../src/services/Progress.js"
import { userCacheDir } from "../support/vm.js"

const cacheDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pyro-cache-test-"))
// The busybox .deb from the user's cache, so the test does not download it again.
Fs.cpSync(Path.join(userCacheDir, "debs"), Path.join(cacheDir, "debs"), {
  recursive: true,
  filter: (src) => !src.endsWith(".deb") || Path.basename(src).startsWith("busybox-static_")
})
afterAll(() => Fs.rmSync(cacheDir, { recursive: true, force: true }))

const storeLayer = EnvironmentStoreLive.pipe(
  Layer.provideMerge(Layer.mergeAll(layerWith({ cacheDir }), ProgressSilent)),
  Layer.provideMerge(NodeContext.layer)
)
const tinyDir = Path.join(cacheDir, "environments", "tiny", findEntry("tiny")!.version)

layer(storeLayer, { timeout: "120 seconds", excludeTestServices: true })("environment store", (it) => {
  it.effect("builds on first pull, then verifies without rebuilding", () =>
    Effect.gen(function*() {
      const store = yield* EnvironmentStore
      expect((yield* store.list).find((e) => e.name === "tiny")?.installed).toBe(false)
      const first = yield* store.pull("tiny")
      expect(first).toMatchObject({ name: "tiny", action: "built", installed: true, path: tinyDir })
      expect(first.rootfs_sha256).toMatch(/^[0-9a-f]{64}$/)
      const second = yield* store.pull("tiny")
      expect(second.action).toBe("already-installed")
      expect((yield* store.list).find((e) => e.name === "tiny")?.installed).toBe(true)
      const inspected = yield* store.inspect("tiny")
      expect(inspected).toMatchObject({ verified: true, rootfs_sha256: first.rootfs_sha256 })
      expect(inspected.packages[0]).toMatch(/^busybox-static /)
    }))

  it.effect("detects a corrupted image and repairs it on the next pull", () =>
    Effect.gen(function*() {
      const store = yield* EnvironmentStore
      const image = Path.join(tinyDir, "rootfs.ext4")
      const fd = Fs.openSync(image, "r+")
      Fs.writeSync(fd, Buffer.from("garbage"), 0, 7, 2048)
      Fs.closeSync(fd)
      expect((yield* store.inspect("tiny")).verified).toBe(false)
      const repaired = yield* store.pull("tiny")
      expect(repaired.action).toBe("repaired")
      expect((yield* store.inspect("tiny")).verified).toBe(true)
    }))

  it.effect("treats a truncated image or a missing manifest as not installed, and ensure rebuilds it", () =>
    Effect.gen(function*() {
      const store = yield* EnvironmentStore
      Fs.truncateSync(Path.join(tinyDir, "rootfs.ext4"), 4096)
      expect(yield* store.installed("tiny")).toBeUndefined()
      const rebuilt = yield* store.ensure("tiny")
      expect(Fs.statSync(rebuilt.rootImage).size).toBe(rebuilt.manifest.rootfs.bytes)
      Fs.rmSync(Path.join(tinyDir, "environment.json"))
      expect(yield* store.installed("tiny")).toBeUndefined()
      expect((yield* store.pull("tiny")).action).toBe("repaired")
    }))

  it.effect("prunes old versions, leftovers of dead builds and download caches, and keeps current installs", () =>
    Effect.gen(function*() {
      const store = yield* EnvironmentStore
      const old = Path.join(cacheDir, "environments", "tiny", "0.9.0")
      const stale = Path.join(cacheDir, "environments", "tiny", "1.1.0.partial-999999999-abcd")
      const unknown = Path.join(cacheDir, "environments", "gone_env")
      for (const dir of [old, stale, unknown]) Fs.mkdirSync(dir, { recursive: true })
      Fs.writeFileSync(Path.join(old, "rootfs.ext4"), Buffer.alloc(8192, 1))
      // A VM template of an image that is no longer installed, and a half-made one.
      const orphanTemplate = Path.join(cacheDir, "templates", "0123456789abcdef01234567")
      const brokenTemplate = Path.join(cacheDir, "templates", "fedcba9876543210fedcba98")
      Fs.mkdirSync(orphanTemplate, { recursive: true })
      Fs.mkdirSync(brokenTemplate, { recursive: true })
      Fs.writeFileSync(Path.join(orphanTemplate, "state"), "s")
      Fs.writeFileSync(Path.join(orphanTemplate, "ram"), "")
      Fs.truncateSync(Path.join(orphanTemplate, "ram"), 128 * 1024 * 1024)
      Fs.writeFileSync(Path.join(orphanTemplate, "template.json"), JSON.stringify({
        inputs: { format: 2, environment: "tiny", root_digest: "f".repeat(64), boot_digest: "b", vcpus: 1, mem_mib: 128,
          scratch_mib: 8192, stage: "boot", scratch_journal: false, network: false, accel: "tcg", qemu: "q" },
        created_at: "2026-11-24T00:00:00.000Z", ram_file: "ram", state_file: "state", state_bytes: 1, state_sha256: "x", boot_ms: 1
      }))
      const v8Caches = Path.join(cacheDir, "v8")
      Fs.mkdirSync(v8Caches, { recursive: true })
      Fs.writeFileSync(Path.join(v8Caches, "cli-0123-run.bin"), "cache")
      const result = yield* store.prune
      const paths = result.removed.map((r) => r.path)
      expect(paths).toEqual(expect.arrayContaining([old, unknown, Path.join(cacheDir, "debs"), orphanTemplate, brokenTemplate, v8Caches]))
      expect(result.removed.find((r) => r.path === orphanTemplate)?.reason).toMatch(/no longer installed/)
      expect(result.freed_bytes).toBeGreaterThanOrEqual(8192)
      expect(Fs.existsSync(stale)).toBe(false)
      expect(yield* store.installed("tiny")).toBeDefined()
    }))

  it.effect("names the known environments when asked for an unknown one", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip((yield* EnvironmentStore).ensure("debian:13"))
      expect(error._tag).toBe("EnvironmentNotFound")
      expect(error.message).toContain("debian:12, debian:12-base, debian:12-build, tiny")
    }))
})
