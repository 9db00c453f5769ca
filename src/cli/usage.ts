import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { formatInputError } from "../contract/common.js"

/** Bad input on the command line: exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

/** Decode command-line values with a contract schema; a mismatch is a usage error naming every field. */
export const decodeArgs = <A, I>(schema: Schema.Schema<A, I>, value: unknown) =>
  Schema.decodeUnknown(schema)(value, { errors: "all" }).pipe(
    Effect.mapError((e) => new UsageError({ detail: formatInputError(e) }))
  )
