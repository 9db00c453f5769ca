/** The catalog's names and fields are the contract's; manifests are validated at the boundary. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { CATALOG, cacheName, DEFAULT_ENVIRONMENT, findEntry } from "../../src/environment/catalog.js"
import { debianSources } from "../../src/environment/debian.js"
import { decodeManifest, encodeManifest, type EnvironmentManifest } from "../../src/environment/manifest.js"

describe("catalog", () => {
  it("has the original's Debian environments and the tiny one", () => {
    expect(CATALOG.map((e) => e.name)).toEqual(["debian:12", "debian:12-base", "debian:12-build", "tiny"])
    expect(findEntry(DEFAULT_ENVIRONMENT)?.default_packages).toContain("git")
    expect(findEntry("debian:12-build")?.default_packages).toEqual(expect.arrayContaining(["build-essential", "python3", "make", "git"]))
    for (const entry of CATALOG) {
      expect(entry).toMatchObject({ distribution: "debian", distribution_version: "12", platform: "linux-x86_64" })
      expect(entry.description.length).toBeGreaterThan(10)
    }
  })

  it("maps names to safe directory names", () => {
    expect(cacheName("debian:12-base")).toBe("debian_12-base")
    expect(cacheName("oci://127.0.0.1:5000/a/b:1")).not.toMatch(/[/:]/)
  })

  it("takes Debian sources from the official archive unless a mirror is given", () => {
    expect(debianSources("bookworm", undefined)).toEqual([
      "deb http://deb.debian.org/debian bookworm main",
      "deb http://deb.debian.org/debian bookworm-updates main",
      "deb http://deb.debian.org/debian-security bookworm-security main"
    ])
    expect(debianSources("bookworm", "http://mirror.example/debian/")[0]).toBe("deb http://mirror.example/debian bookworm main")
  })
})

describe("environment.json", () => {
  const manifest: EnvironmentManifest = {
    format: 1,
    name: "debian:12",
    version: "1.0.0",
    description: "d",
    distribution: "debian",
    distribution_version: "12",
    platform: "linux-x86_64",
    rootfs: { file: "rootfs.ext4", sha256: "a".repeat(64), bytes: 1024 },
    default_packages: ["git"],
    packages: ["git 1:2.39.5-0+deb12u2"],
    kernel: "k",
    source: "built locally",
    built_at: "2026-11-24T00:00:00.000Z"
  }

  it.effect("round-trips", () =>
    Effect.gen(function*() {
      expect(yield* decodeManifest(yield* encodeManifest(manifest))).toEqual(manifest)
    }))

  it.effect("rejects a manifest that could point outside its directory or lacks a digest", () =>
    Effect.gen(function*() {
      const bad = [
        { ...manifest, rootfs: { ...manifest.rootfs, file: "../../etc/passwd" } },
        { ...manifest, rootfs: { ...manifest.rootfs, sha256: "xyz" } },
        { ...manifest, format: 2 },
        "not json"
      ]
      for (const value of bad) {
        const result = yield* Effect.either(decodeManifest(typeof value === "string" ? value : JSON.stringify(value)))
        expect(result._tag).toBe("Left")
      }
    }))
})
