import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { parseChallenge } from "../../src/oci/challenge.js"
import { formatReference, loadReference, parseReference } from "../../src/oci/reference.js"

const HEX = "a".repeat(64)
const ok = (input: string, options?: Parameters<typeof parseReference>[1]) => Either.getOrThrow(parseReference(input, options))
const reason = (input: string, options?: Parameters<typeof parseReference>[1]) => {
  const result = parseReference(input, options)
  if (Either.isRight(result)) throw new Error(`${input} parsed`)
  return result.left.message
}

describe("parseReference", () => {
  it("parses host, port, repository, tag and digest", () => {
    expect(ok(`oci://127.0.0.1:5000/pyro/env:1.0@sha256:${HEX}`)).toEqual({
      registry: "127.0.0.1:5000",
      hostname: "127.0.0.1",
      repository: "pyro/env",
      tag: "1.0",
      digest: `sha256:${HEX}`,
      scheme: "http"
    })
  })

  it("defaults the tag to latest, unless a digest pins it", () => {
    expect(ok("oci://registry.example.com/a/b/c").tag).toBe("latest")
    const pinned = ok(`oci://registry.example.com/a@sha256:${HEX}`)
    expect(pinned.tag).toBeUndefined()
    expect(pinned.digest).toBe(`sha256:${HEX}`)
  })

  it("uses https except for loopback and insecure registries", () => {
    expect(ok("oci://ghcr.io/x/y").scheme).toBe("https")
    expect(ok("oci://localhost:5000/x").scheme).toBe("http")
    expect(ok("oci://[::1]:5000/x").scheme).toBe("http")
    expect(ok("oci://[::1]:5000/x").hostname).toBe("::1")
    expect(ok("oci://10.0.0.5:5000/x", { insecureRegistries: ["10.0.0.5:5000"] }).scheme).toBe("http")
    expect(ok("oci://reg.lan/x", { insecureRegistries: [" reg.lan "] }).scheme).toBe("http")
    expect(ok("oci://reg.lan:8443/x", { insecureRegistries: ["other.lan"] }).scheme).toBe("https")
  })

  it("reads PYRO_INSECURE_REGISTRIES", () =>
    Effect.gen(function*() {
      const ref = yield* loadReference("oci://reg.lan:5000/x").pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PYRO_INSECURE_REGISTRIES", "a.lan,reg.lan:5000"]])))
      )
      expect(ref.scheme).toBe("http")
    }).pipe(Effect.runSync))

  it("accepts a bare reference only when asked", () => {
    expect(reason("ghcr.io/x/y:1")).toContain("expected oci://")
    expect(ok("ghcr.io/x/y:1", { allowBare: true }).repository).toBe("x/y")
  })

  it("round-trips through formatReference", () => {
    for (const text of ["oci://h:1/a/b:t", `oci://h/a@sha256:${HEX}`, `oci://h/a:t@sha256:${HEX}`, "oci://[::1]:5000/x:latest"]) {
      expect(formatReference(ok(text))).toBe(text)
    }
  })

  it("rejects malformed references with a reason", () => {
    expect(reason("https://h/x")).toContain("only oci://")
    expect(reason("oci://h")).toContain("missing repository")
    expect(reason("oci://h/")).toContain("missing repository")
    expect(reason("oci://h/Upper")).toContain("lowercase")
    expect(reason("oci://h/a//b")).toContain("invalid repository")
    expect(reason("oci://h/a/../b")).toContain("invalid repository")
    expect(reason("oci://h/a:b:c")).toContain("invalid tag")
    expect(reason("oci://h/a:")).toContain("invalid tag")
    expect(reason("oci://h/a@sha512:abc")).toContain("only sha256")
    expect(reason("oci://h/a@sha256:abc")).toContain("invalid digest")
    expect(reason("oci://h:99999/a")).toContain("invalid port")
    expect(reason("oci://h_x/a")).toContain("invalid registry host")
    expect(reason("oci://h/a b")).toContain("whitespace")
    expect(reason(`oci://h/${"a".repeat(300)}`)).toContain("longer than 255")
  })
})

describe("parseChallenge", () => {
  it("reads a bearer challenge", () => {
    expect(parseChallenge(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`)).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull,push" }
    })
  })

  it("reads basic, unquoted and escaped values, and stops at a second challenge", () => {
    expect(parseChallenge(`Basic realm="a \\"b\\""`)).toEqual({ scheme: "basic", params: { realm: "a \"b\"" } })
    expect(parseChallenge("Bearer realm=x , service=y Basic realm=z")).toEqual({ scheme: "bearer", params: { realm: "x", service: "y" } })
    expect(parseChallenge("")).toBeUndefined()
    expect(parseChallenge(`Bearer realm="unterminated`)).toBeUndefined()
  })
})
