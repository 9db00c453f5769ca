/**
 * Failures of the OCI registry client, one tagged class per kind, each with a
 * one-line `message` that names the image reference (and the HTTP status when
 * there is one) so the CLI can print it as is.
 */
import * as Data from "effect/Data"

export class InvalidReference extends Data.TaggedError("InvalidReference")<{
  readonly input: string
  readonly reason: string
}> {
  override get message() {
    return `invalid image reference "${this.input}": ${this.reason}`
  }
}

/** The connection failed or was reset (DNS, refused, TLS, a body cut off). */
export class RegistryUnreachable extends Data.TaggedError("RegistryUnreachable")<{
  readonly reference: string
  readonly method: string
  readonly url: string
  readonly detail: string
}> {
  override get message() {
    return `cannot reach the registry for ${this.reference} (${this.method} ${this.url}): ${this.detail}`
  }
}

export class RegistryTimeout extends Data.TaggedError("RegistryTimeout")<{
  readonly reference: string
  readonly method: string
  readonly url: string
  readonly seconds: number
}> {
  override get message() {
    return `the registry did not answer within ${this.seconds}s for ${this.reference} (${this.method} ${this.url})`
  }
}

/** An HTTP status the operation did not expect. */
export class RegistryHttpError extends Data.TaggedError("RegistryHttpError")<{
  readonly reference: string
  readonly method: string
  readonly url: string
  readonly status: number
  readonly detail: string
}> {
  override get message() {
    return `registry answered HTTP ${this.status} to ${this.method} ${this.url} for ${this.reference}` +
      (this.detail ? `: ${this.detail}` : "")
  }
}

/** The registry wants a login and none was given (or anonymous access was refused). */
export class RegistryAuthRequired extends Data.TaggedError("RegistryAuthRequired")<{
  readonly reference: string
  readonly registry: string
  readonly status: number
}> {
  override get message() {
    return `registry requires credentials: ${this.registry} refused anonymous access to ${this.reference} ` +
      `(HTTP ${this.status}); set PYRO_REGISTRY_USERNAME and PYRO_REGISTRY_PASSWORD`
  }
}

/** A token could not be obtained, or the credentials given were rejected. */
export class RegistryAuthFailed extends Data.TaggedError("RegistryAuthFailed")<{
  readonly reference: string
  readonly registry: string
  readonly detail: string
  readonly status?: number | undefined
}> {
  override get message() {
    const status = this.status === undefined ? "" : ` (HTTP ${this.status})`
    return `authentication with ${this.registry} failed for ${this.reference}${status}: ${this.detail}`
  }
}

/** The registry broke the protocol: a malformed header, a missing Location, a bad token response. */
export class RegistryProtocolError extends Data.TaggedError("RegistryProtocolError")<{
  readonly reference: string
  readonly detail: string
}> {
  override get message() {
    return `registry sent an invalid response for ${this.reference}: ${this.detail}`
  }
}

export class NotFound extends Data.TaggedError("NotFound")<{
  readonly reference: string
  /** "image", "blob sha256:...". */
  readonly what: string
  readonly status: number
  readonly detail: string
}> {
  override get message() {
    return `${this.what} not found: ${this.reference} (HTTP ${this.status}${this.detail ? `, ${this.detail}` : ""})`
  }
}

export class DigestMismatch extends Data.TaggedError("DigestMismatch")<{
  readonly reference: string
  readonly what: string
  readonly expected: string
  readonly actual: string
}> {
  override get message() {
    return `digest mismatch for ${this.what} of ${this.reference}: expected ${this.expected}, got ${this.actual}`
  }
}

/** A download carried fewer ("truncated") or more ("oversized") bytes than its descriptor declared. */
export class SizeMismatch extends Data.TaggedError("SizeMismatch")<{
  readonly reference: string
  readonly what: string
  readonly kind: "truncated" | "oversized"
  readonly expected: number
  readonly actual: number
}> {
  override get message() {
    return this.kind === "truncated"
      ? `truncated download of ${this.what} for ${this.reference}: got ${this.actual} of ${this.expected} bytes`
      : `${this.what} for ${this.reference} is larger than its declared size of ${this.expected} bytes`
  }
}

export class DocumentTooLarge extends Data.TaggedError("DocumentTooLarge")<{
  readonly reference: string
  readonly what: string
  readonly limit: number
}> {
  override get message() {
    return `${this.what} of ${this.reference} is larger than the ${this.limit}-byte limit`
  }
}

/** A manifest, index or config that is not valid JSON of the expected shape. */
export class InvalidDocument extends Data.TaggedError("InvalidDocument")<{
  readonly reference: string
  readonly what: string
  readonly detail: string
}> {
  override get message() {
    return `invalid ${this.what} in ${this.reference}: ${this.detail}`
  }
}

export class UnsupportedMediaType extends Data.TaggedError("UnsupportedMediaType")<{
  readonly reference: string
  readonly mediaType: string
  readonly detail: string
}> {
  override get message() {
    return `unsupported media type ${this.mediaType} in ${this.reference}: ${this.detail}`
  }
}

export class NoMatchingPlatform extends Data.TaggedError("NoMatchingPlatform")<{
  readonly reference: string
  readonly wanted: string
  readonly available: ReadonlyArray<string>
}> {
  override get message() {
    const available = this.available.length > 0 ? this.available.join(", ") : "none"
    return `${this.reference} has no ${this.wanted} image (available: ${available})`
  }
}

/** A tar entry that would write outside the destination or through a symbolic link. */
export class UnsafeArchiveEntry extends Data.TaggedError("UnsafeArchiveEntry")<{
  readonly layer: string
  readonly entry: string
  readonly reason: string
}> {
  override get message() {
    return `refusing unsafe entry "${this.entry}" in layer ${this.layer}: ${this.reason}`
  }
}

/** A layer or blob that is not a readable (compressed) tar archive. */
export class InvalidArchive extends Data.TaggedError("InvalidArchive")<{
  readonly layer: string
  readonly detail: string
}> {
  override get message() {
    return `invalid archive ${this.layer}: ${this.detail}`
  }
}

/** A local file operation failed (disk full, permissions). */
export class OciIoError extends Data.TaggedError("OciIoError")<{
  readonly op: string
  readonly path: string
  readonly cause: unknown
}> {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.op} ${this.path} failed: ${detail}`
  }
}
