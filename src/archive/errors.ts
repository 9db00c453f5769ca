/**
 * Failures of the archive module, in its own terms: bytes that are not a tar
 * the reader accepts, an entry the path policy refuses, a host source that
 * cannot be read. Each caller says what they mean for it (an OCI layer that
 * is invalid, an import or export that is refused) by mapping them to its
 * own errors; the fields carry everything a message needs.
 */
import * as Data from "effect/Data"

import { quoteEntryName } from "../contract/errors.js"

export { quoteEntryName }

/** Malformed, truncated or unsupported tar data. `archive` names the archive (a path, a layer digest). */
export class InvalidTar extends Data.TaggedError("InvalidTar")<{
  readonly archive: string
  readonly detail: string
}> {
  override get message() {
    return `invalid tar archive ${this.archive}: ${this.detail}`
  }
}

/** An entry the path policy refuses; `entry` is its name as the source gives it (not normalised). */
export class RefusedEntry extends Data.TaggedError("RefusedEntry")<{
  readonly source: string
  readonly entry: string
  readonly reason: string
}> {
  override get message() {
    return `${this.source}: entry ${quoteEntryName(this.entry)} ${this.reason}`
  }
}

/** A source that cannot be used: unreadable, corrupt, truncated, or changed while being read. */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly source: string
  readonly detail: string
}> {
  override get message() {
    return `${this.source}: ${this.detail}`
  }
}
