import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { describe, expect, it } from "vitest"
import { SecretEnv } from "../../src/contract/workspace/secrets.js"

describe("secret_env", () => {
  it("refuses a key that is not a secret name instead of dropping it", () => {
    const decoded = Schema.decodeUnknownEither(SecretEnv)({ "bad-name": "X", OK: "Y" })
    expect(Either.isLeft(decoded)).toBe(true)
    expect(String(Either.isLeft(decoded) && decoded.left.message)).toContain("bad-name")
    expect(Schema.decodeUnknownSync(SecretEnv)({ API_TOKEN: "TOKEN" })).toEqual({ API_TOKEN: "TOKEN" })
    expect(Either.isLeft(Schema.decodeUnknownEither(SecretEnv)({ OK: "bad var" }))).toBe(true)
  })
})
