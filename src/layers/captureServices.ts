import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/**
 * Exactly these services from the layer's construction context, for a layer's
 * methods to provide to the platform code they call. Never the whole context:
 * it holds the Scope the layer was built in, and providing that would attach
 * every resource a method acquires to the layer's lifetime instead of the
 * caller's scope.
 */
export const captureServices = <Tags extends ReadonlyArray<Context.Tag<any, any>>>(...tags: Tags) =>
  Effect.map(
    Effect.context<Context.Tag.Identifier<Tags[number]>>(),
    (context) => Context.pick(...tags)(context) as Context.Context<Context.Tag.Identifier<Tags[number]>>
  )
