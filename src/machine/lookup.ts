/**
 * Finding a long-lived machine by id, for any kind of record: a machine whose
 * record is gone, or expired, is not found; an expired one is reaped by
 * whichever call reaches it first.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { isExpired } from "./record.js"

export const makeMachineLookup = <A extends { readonly expires_at: string }, E, R, RRemove>(kind: {
  readonly read: (id: string) => Effect.Effect<Option.Option<A>, never, R>
  readonly notFound: (id: string) => E
  /** Removes the machine; it takes the machine's locks. */
  readonly remove: (id: string) => Effect.Effect<unknown, unknown, RRemove>
}) => {
  /** The record, expired or not. */
  const anyRecord = (id: string) =>
    Effect.flatMap(kind.read(id), Option.match({
      onNone: () => Effect.fail(kind.notFound(id)),
      onSome: Effect.succeed
    }))

  /** The machine, if it exists and has not expired. Safe under a lock: it reaps nothing. */
  const liveRecord = (id: string) =>
    Effect.flatMap(anyRecord(id), (record) => isExpired(record, Date.now()) ? Effect.fail(kind.notFound(id)) : Effect.succeed(record))

  /** An expired machine goes, whoever reaches it first. Removal takes locks: never call this holding one. */
  const reapIfExpired = (id: string) =>
    Effect.flatMap(kind.read(id), (record) =>
      Option.isSome(record) && isExpired(record.value, Date.now()) ? Effect.ignore(Effect.suspend(() => kind.remove(id))) : Effect.void)

  /** The machine, if it exists and has not expired; an expired one is reaped on the spot. Never under a lock. */
  const getRecord = (id: string) => liveRecord(id).pipe(Effect.tapError(() => reapIfExpired(id)))

  return { anyRecord, liveRecord, reapIfExpired, getRecord }
}
