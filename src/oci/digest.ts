/** sha256 digests as OCI writes them: `sha256:<64 lowercase hex>`. */
import * as Schema from "effect/Schema"

export const SHA256_DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/

/** Only sha256 is accepted: it is what every registry uses, and what the blob cache is keyed by. */
export const Sha256Digest = Schema.String.pipe(
  Schema.pattern(SHA256_DIGEST_PATTERN, { message: () => "expected a digest of the form sha256:<64 hex digits>" })
)

export const digestHex = (digest: string) => digest.slice("sha256:".length)

/** The first 12 hex digits, as `docker pull` shows layers. */
export const shortDigest = (digest: string) => digestHex(digest).slice(0, 12)

export const sha256Digest = (hex: string) => `sha256:${hex}`
