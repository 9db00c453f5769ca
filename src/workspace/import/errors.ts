/**
 * Failures of the workspace import path (seed at create, sync push): one for
 * an entry the host refuses to send, one for a source it cannot use at all.
 * Both name the source; the first also names the entry, so the CLI can print
 * the message as is.
 */
import * as Data from "effect/Data"
import { quoteEntryName } from "../../archive/errors.js"

/** An entry of the source that would write outside the destination, or that a sandbox must not receive. */
export class UnsafeImportEntry extends Data.TaggedError("UnsafeImportEntry")<{
  /** The host path of the directory or archive being imported. */
  readonly source: string
  /** The entry's name as the source gives it (not normalised). */
  readonly entry: string
  readonly reason: string
}> {
  override get message() {
    return `refusing to import ${this.source}: entry ${quoteEntryName(this.entry)} ${this.reason}`
  }
}

/** The source cannot be imported at all: missing, not a directory or tar archive, unreadable, corrupt or truncated. */
export class ImportSourceError extends Data.TaggedError("ImportSourceError")<{
  readonly source: string
  readonly detail: string
}> {
  override get message() {
    return `cannot import ${this.source}: ${this.detail}`
  }
}
