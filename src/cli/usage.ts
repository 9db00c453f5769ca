import * as Data from "effect/Data"

/** Bad input on the command line: exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}
